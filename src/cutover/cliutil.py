"""What every headless command shares: exit codes, output, and opening the session."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cutover import runbook as runbook_mod
from cutover.errors import CutoverError
from cutover.gates import Verdict
from cutover.session import Session

OK, FAIL, ERROR, WAIT = 0, 1, 2, 3
EXIT_FOR_VERDICT = {Verdict.PASS: OK, Verdict.FAIL: FAIL, Verdict.WAIT: WAIT}


class UsageError(CutoverError):
    """The operator asked for something that cannot be: exit 2 with this message."""


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        err(f"warning: {warning}")


def session_for(args: argparse.Namespace) -> Session:
    path = runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    return Session(runbook_mod.load(path, shown_as=str(path)))
