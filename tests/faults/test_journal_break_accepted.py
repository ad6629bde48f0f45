"""A broken chain refuses advance, step back and sign-off, and without a way out a single
corrupted line would stop a three-week cutover for good (rollback only). A person who has
looked at the break accepts it with a note; the acceptance names the break, so the record
keeps it, and a later break is caught again."""

from __future__ import annotations

import json

from moves_world import cli, environ, fake_vercel, write_runbook

STAGES = """
[[stages]]
id = "off"
title = "Off"
percent = 0

  [[stages.steps]]
  id = "ready"
  text = "Ready"

  [[stages.steps]]
  id = "backup"
  text = "Backup taken"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
"""


def edit_a_timestamp(path, line: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    event = json.loads(lines[line - 1])
    event["ts"] = "2020-01-01T00:00:00+00:00"  # the hash no longer matches
    lines[line - 1] = json.dumps(event) + "\n"
    path.write_text("".join(lines))


def test_an_accepted_break_lets_sign_off_work_again_and_stays_on_record(tmp_path):
    book = write_runbook(tmp_path, STAGES)
    path = tmp_path / "journal.jsonl"
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "signoff", "ready", "--note", "n").code == 0
        assert cli(book, env, "raise", "x", "--note", "n").code == 2  # no such trigger
        edit_a_timestamp(path, 1)
        refused = cli(book, env, "signoff", "backup", "--note", "n")
        no_note = cli(book, env, "journal", "--accept-break")
        accepted = cli(book, env, "journal", "--accept-break", "--note", "restored from backup")
        signed = cli(book, env, "signoff", "backup", "--note", "n")
        verified = cli(book, env, "journal", "--verify", "--json")
        intact = cli(book, env, "journal", "--accept-break", "--note", "again")
        edit_a_timestamp(path, 3)  # a new break after the acceptance
        later = cli(book, env, "signoff", "backup", "--note", "n")

    assert refused.code == 1 and "line 1" in refused.stderr
    assert no_note.code == 2 and "--note" in no_note.stderr
    assert accepted.code == 0, accepted.output
    assert "restored from backup" in path.read_text()
    assert signed.code == 0, signed.output
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert any("accepted by tester" in note for note in report["notes"])
    assert intact.code == 1 and "nothing to accept" in intact.stdout
    assert later.code == 1 and "line 3" in later.stderr


def test_removed_last_lines_can_be_accepted_too(tmp_path):
    book = write_runbook(tmp_path, STAGES)
    path = tmp_path / "journal.jsonl"
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "signoff", "ready", "--note", "n").code == 0
        assert cli(book, env, "signoff", "backup", "--note", "n").code == 0
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:1]))  # the last event removed
        broken = cli(book, env, "journal", "--verify")
        accepted = cli(book, env, "journal", "--accept-break", "--note", "disk restore")
        fine = cli(book, env, "journal", "--verify")
        again = cli(book, env, "signoff", "backup", "--note", "n")

    assert broken.code == 1 and "removed" in broken.stdout
    assert accepted.code == 0, accepted.output
    assert fine.code == 0, fine.output
    assert again.code == 0, again.output
