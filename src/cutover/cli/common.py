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
from typing import Any, TextIO

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


# While an acting command runs with --json, what it says for people goes to stderr (and is
# kept), so stdout carries one JSON document only.
said: list[str] | None = None


def out(text: str = "") -> None:
    if said is not None:
        said.append(shown(text))
        _write(sys.stderr, shown(text))
        return
    _write(sys.stdout, shown(text))


def out_json(document: object) -> None:
    """The one JSON document of a command, to stdout whatever `said` collects."""
    _write(sys.stdout, shown(json.dumps(document, ensure_ascii=False)))


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


# -- the arguments of the commands whose options grew with the platform: `demo` (the
# world's knobs) and `rollback` (which way it reaches traffic) ---------------------------

# How long the demo's loopback Vercel takes to build a deployment: long enough that a
# rollback by build and one without are told apart at a glance.
DEMO_BUILD_S = 45.0


def add_demo(sub: Any) -> argparse.ArgumentParser:
    demo = sub.add_parser(
        "demo",
        help="the whole world on this machine (embedded Postgres, simulated traffic, a local "
        "Vercel-compatible API, health and v1 endpoints) and the console on it",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="start the world, print the environment for other shells, run until Ctrl-C",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the last demo's journal instead of a fresh one"
    )
    demo.add_argument(
        "--rate",
        type=float,
        default=6000.0,
        metavar="N",
        help="imports per minute of real time (default 6000: on the demo's clock, where an "
        "hour passes in a second, 100 an hour)",
    )
    demo.add_argument(
        "--build-seconds",
        type=float,
        default=DEMO_BUILD_S,
        metavar="S",
        help=f"how long a deployment takes to build (default {DEMO_BUILD_S:g}; also "
        'changeable while it runs: POST {"build_seconds": 5} to its control URL\'s /vercel)',
    )
    demo.add_argument(
        "--hobby",
        action="store_true",
        help="the loopback Vercel follows the Hobby plan: instant rollback only to the "
        "immediately previous production deployment",
    )
    demo.add_argument(
        "--dir",
        default=".cutover/demo",
        metavar="PATH",
        help="where the demo keeps its database, journal and demo.env (default .cutover/demo)",
    )
    demo.add_argument(
        "--team",
        action="store_true",
        help="team mode: the record on the demo's Postgres, and two operators' consoles side "
        "by side in tmux (with --headless: the two console commands printed, no tmux)",
    )
    demo.add_argument(
        "--tmux-socket",
        metavar="NAME",
        help="with --team: the name of the demo's own tmux server (default cutover-team-PID)",
    )
    return demo


def add_rollback(sub: Any) -> argparse.ArgumentParser:
    rb = sub.add_parser("rollback", help="emergency rollback (default to 0 %%)")
    rb.add_argument("--to", metavar="STAGE", help="roll back to this stage's percent instead")
    rb.add_argument("--reason", required=True, help="why (it goes in the journal)")
    rb.add_argument(
        "--yes",
        action="store_true",
        help="really do it (instantly, where a deployment of the live commit carries the "
        "target; else by PATCH + redeploy)",
    )
    how = rb.add_mutually_exclusive_group()
    how.add_argument(
        "--instant",
        action="store_const",
        const="instant",
        dest="how",
        default="auto",
        help="take the instant rollback even when it also reverts commits deployed since",
    )
    how.add_argument(
        "--redeploy",
        action="store_const",
        const="redeploy",
        dest="how",
        help="set the flag and build, never the instant way",
    )
    rb.add_argument(
        "--observe",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to watch the observed share fall to 0 afterwards (default 300; 0: don't)",
    )
    return rb


def add_report(sub: Any) -> argparse.ArgumentParser:
    rp = sub.add_parser(
        "report",
        help="what the cutover went through, from the record alone: HTML (one file) or "
        "Markdown (charts beside it)",
    )
    which = rp.add_mutually_exclusive_group()
    which.add_argument("--stage", metavar="ID", help="every visit of this stage")
    which.add_argument("--all", action="store_true", help="every visit of every stage")
    rp.add_argument("--format", choices=("html", "md"), default="html")
    rp.add_argument(
        "-o", "--output", metavar="FILE", help="write here (default: stdout; md charts need it)"
    )
    return rp


def add_store(sub: Any) -> argparse.ArgumentParser:
    st = sub.add_parser(
        "store",
        help="team mode: create the state store's schema, bring a file journal in, write it out",
    )
    do = st.add_subparsers(dest="store_command", metavar="init|import|export")
    init = do.add_parser(
        "init",
        help="create or upgrade the schema (versioned, idempotent); run as the schema's owner",
    )
    init.add_argument(
        "--dsn-env",
        default=None,
        help="the variable holding the owner's DSN (default: [store] dsn_env)",
    )
    init.add_argument(
        "--grant",
        metavar="ROLE",
        default=None,
        help="grant ROLE what consoles and watchers need: INSERT and SELECT on the record",
    )
    imp = do.add_parser(
        "import",
        help="bring the file journal, its evidence and snapshots into the store (verified)",
    )
    imp.add_argument(
        "--from", dest="source", default=None, help="the journal file (default: [journal] path)"
    )
    exp = do.add_parser("export", help="write the store's record to files (a new journal)")
    exp.add_argument("--to", required=True, help="the journal file to write (must not exist)")
    return st
