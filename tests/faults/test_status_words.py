"""`status` once said "visit 10" (a counter of every stage entry, meaningless to an
operator) and "hold 2m 4s of 48s" (time past the hold, as if it were not met)."""

from __future__ import annotations

from moves_world import cli, environ, fake_vercel, write_runbook

STAGES = """
[[stages]]
id = "off"
title = "Off"
percent = 0

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"
"""


def test_status_says_how_many_times_this_stage_was_entered_not_a_raw_counter(tmp_path):
    book = write_runbook(tmp_path, STAGES)
    with fake_vercel() as fake:
        env = environ(fake)
        first = cli(book, env, "status")
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        assert cli(book, env, "rollback", "--yes", "--reason", "r", "--observe", "0").code == 0
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        again = cli(book, env, "status")

    assert "visit" not in first.stdout and "time in this stage" not in first.stdout
    assert "canary (Canary) (2nd time in this stage)" in again.stdout
    assert "visit" not in again.stdout
    assert "hold      no hold" in again.stdout
