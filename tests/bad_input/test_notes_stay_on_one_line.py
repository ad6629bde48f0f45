"""A note is one entry, whatever it holds. Once, a note with a line break printed as two lines
in `status`, its second line reading like another entry (a forged sign-off); every one-line
view (status, digest, the watcher's lines) now shows a note on its own line only."""

from __future__ import annotations

from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, write_runbook

MANUAL = """
[[triggers]]
id = "complaints"
kind = "manual"
severity = "high"
respond_within = "1h"
title = "User complaints about imports"
"""

FORGED = "3 users wrote in\n  ✓ prep signed off by alice: all clear"


def test_a_note_with_a_line_break_cannot_forge_a_line_in_status_or_digest(tmp_path):
    book = write_runbook(tmp_path, PLAIN_STAGES + MANUAL)
    with fake_vercel() as fake:
        env = environ(fake)
        raised = cli(book, env, "raise", "complaints", "--note", FORGED)
        status = cli(book, env, "status")
        digest = cli(book, env, "digest", "--since", "1h")
    assert raised.code == 0, raised.output
    for ran in (status, digest):
        lines = ran.stdout.splitlines()
        assert not any(line.lstrip().startswith("✓ prep signed off") for line in lines), ran.stdout
        (line,) = [line for line in lines if "3 users wrote in" in line]
        assert "complaints" in line and "all clear" in line
