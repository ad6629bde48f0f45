"""One watcher per journal: an exclusive, non-blocking lock on a file beside the journal
that names its holder, so a second `cutover watch` says who is watching and leaves."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path

from cutover.base.errors import CutoverError
from cutover.base.private import FILE_MODE, private_dir
from cutover.record.journal import iso_utc

SUFFIX = ".watch.lock"


def lock_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + SUFFIX)


class WatcherRunning(CutoverError):
    """Another watcher holds this journal; `holder` says who, where, since when."""

    def __init__(self, holder: str, path: Path):
        self.holder = holder
        super().__init__(
            f"another watcher is already watching this journal: {holder} (lock {path}); one "
            "watcher per journal: stop that one first, or leave it watching"
        )


class WatchLock:
    """Held for the watcher's whole life; released by `release()` or by the process ending
    (the kernel drops a flock with its last descriptor, so a killed watcher leaves none)."""

    def __init__(self, journal_path: Path, *, actor: str, host: str):
        self.path = lock_path(Path(journal_path))
        self.actor = actor
        self.host = host
        self._fd: int | None = None

    def acquire(self, now: datetime) -> None:
        private_dir(self.path.parent, tighten=False)
        # Never deleted: unlinking a flock'ed file lets two processes lock two different files.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise WatcherRunning(holder, self.path) from None
        except BaseException:
            os.close(fd)
            raise
        since = iso_utc(now.replace(microsecond=0))
        record = {"actor": self.actor, "host": self.host, "pid": os.getpid(), "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record, ensure_ascii=False).encode("utf-8"), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # a stale name in an unheld lock would mislead
        finally:
            os.close(fd)

    def __enter__(self) -> WatchLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> str:
    raw = os.pread(fd, 64 * 1024, 0)
    try:
        h = json.loads(raw)
        return f"{h['actor']} on {h['host']} (pid {h['pid']}) since {h['since']}"
    except (ValueError, KeyError, TypeError):
        # Between the holder's lock and its write, or written by something else.
        text = raw.decode("utf-8", "replace").strip()[:200]
        return text or "another watcher (it has not said who yet)"
