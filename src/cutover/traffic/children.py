"""A flag command's process outlives cutover: it runs in a session of its own (so a timeout
can end its whole pipeline), so a SIGHUP or kill -9 of cutover leaves it running. Once, the
next command settled the move as "failed … did not take effect" and twelve seconds later the
orphan wrote 10 %. So the running command is recorded beside the journal while it runs, and
an interrupted move settles only once it has exited."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

from cutover.base.private import FILE_MODE


def record_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".child")


def started(path: Path, pid: int, command: str) -> None:
    """Say that `pid` (leading its own process group) runs `command` for a move."""
    body = json.dumps({"pid": pid, "pgid": pid, "command": command[:200]}).encode()
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)


def ended(path: Path, pid: int) -> None:
    """The command `pid` has exited: its record goes (only its own: another may be newer)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def running(path: Path, *, alive_only: bool = True) -> tuple[int, str | None] | None:
    """(process group, its command) of a flag command still running for a move; None when
    none is recorded, or (alive_only) the one recorded has exited."""
    try:
        data = json.loads(path.read_text())
        pgid, command = int(data["pgid"]), str(data.get("command") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if alive_only and not _alive(pgid):
        with contextlib.suppress(OSError):
            path.unlink()  # a stale record: its command ended with its owner's crash
        return None
    return pgid, command


def end_group(pgid: int) -> None:
    """Stop a recorded command and everything it started (a second signal asked for it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, but alive
    return True
