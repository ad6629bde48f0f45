"""What every headless command shares: exit codes, output, and opening the session.

Every line a command prints goes through `out`/`err`: the one choke point where the
session's secrets are redacted and terminal controls made inert, whoever wrote the text (a
sign-off note, a column alias, a platform's error)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from cutover.base.errors import CutoverError
from cutover.base.inert import inert
from cutover.base.redact import Redactor
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.runbook import loader as runbook_mod

OK, FAIL, ERROR, WAIT = 0, 1, 2, 3
EXIT_FOR_VERDICT = {Verdict.PASS: OK, Verdict.FAIL: FAIL, Verdict.WAIT: WAIT}

# The redactor of the session this process opened (see `session_for`). Before one is open
# (a runbook that does not load) passwords in URLs and Authorization headers are still hidden.
_redact: Callable[[str], str] = Redactor()

# What JSON leaves raw that a terminal would obey or that reorders text: DEL, the C1
# controls (0x9b is a one-byte CSI) and the bidi controls. JSON escapes everything below 0x20.
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class UsageError(CutoverError):
    """The operator asked for something that cannot be: exit 2 with this message."""


def use_redactor(redact: Callable[[str], str]) -> None:
    """From now on, everything `out` and `err` print is passed through `redact`."""
    global _redact
    _redact = redact


def shown(text: object) -> str:
    """`text` as the terminal gets it: redacted, then inert. A JSON document stays JSON
    (controls as \\u escapes, so `jq` reads back exactly what was journaled); any other
    text keeps its line breaks and shows every control in caret notation or by name.

    >>> shown("note: \\x1b]52;c;aGk=\\x07 \\u202eok\\nnext")
    'note: ^[]52;c;aGk=^G <U+202E>ok\\nnext'
    >>> shown('{"note": "\\u202e\\x9b"}')
    '{"note": "\\\\u202e\\\\u009b"}'
    """
    text = _redact(str(text))
    safe = inert(text, newlines=True)
    if safe != text and text[:1] in ("{", "[") and _is_json(text):
        return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return safe


def _is_json(text: str) -> bool:
    try:
        json.loads(text)  # strict: a raw control character in a string is not JSON
    except ValueError:
        return False
    return True


def out(text: str = "") -> None:
    _write(sys.stdout, shown(text))


def err(text: str) -> None:
    _write(sys.stderr, shown(text))


def _write(stream: TextIO, text: str) -> None:
    """One line to the reader; a reader gone (`cutover evidence | head`) is no error. The
    rest goes to /dev/null, so a command still doing its job (a rollback) finishes it."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


def warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        err(f"warning: {warning}")


def session_for(args: argparse.Namespace) -> Session:
    path = runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    session = Session(runbook_mod.load(path, shown_as=str(path)))
    use_redactor(session.redact)
    warn(session.fold_spilled())  # a rollback's records kept elsewhere, back where they belong
    return session
