"""The evidence as a feed of lines, followed incrementally: whoever judges it every second for
weeks (the console, the watcher, a trend) asks only for what was appended since it last
asked. The files store follows a file by byte offset; the Postgres store follows rows by id.
Both give the same lines (each one run's JSON, MAC included), so every reader decodes and
trusts them the same way."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# The last whole line read is checked again before reading on: a file rewritten under the
# same name and size would otherwise be folded onto runs it no longer has.
_CHECK = 4096


@dataclass(frozen=True)
class Batch:
    """What is new: `restarted` says that what was read before is gone (the file replaced,
    shortened or rewritten): forget it, these lines start over. Each line comes with its
    number (the file's line, or the row's id)."""

    restarted: bool = False
    lines: list[tuple[int, bytes]] = field(default_factory=list)


class LineFeed(Protocol):
    def read(self) -> Batch:
        """What was appended since the last read. OSError when it cannot be read (the
        Postgres store's StoreUnavailable is one): what was read before stays true."""
        ...

    def restart(self) -> None:
        """Forget the position: the next read starts from the first line."""
        ...


class FileFeed:
    """A JSON Lines file, read from where the last read stopped. A read that finds nothing
    new costs one stat; a partial last line (a write in progress) is left for the next."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ident: tuple[int, int] | None = None
        self._offset = 0  # just past the last whole line read
        self._line = 0  # its line number
        self._last = b""  # the tail of that line, newline included

    def restart(self) -> None:
        self._ident, self._offset, self._line, self._last = None, 0, 0, b""

    def read(self) -> Batch:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._ident is None:
                return Batch()
            self.restart()
            return Batch(restarted=True)
        if (st.st_dev, st.st_ino) == self._ident and st.st_size == self._offset:
            return Batch()  # nothing new: the cost of one stat
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return Batch()  # replaced between the stat and the open: the next read sees it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # an append is never half-seen
            st = os.fstat(fd)
            ident, size = (st.st_dev, st.st_ino), st.st_size
            restarted = False
            if ident != self._ident or size < self._offset or not self._still_there(fd):
                restarted = self._ident is not None
                self.restart()
                self._ident = ident
            data = os.pread(fd, size - self._offset, self._offset) if size > self._offset else b""
        finally:
            os.close(fd)
        return Batch(restarted, self._take(data))

    def _still_there(self, fd: int) -> bool:
        if not self._last:
            return True
        start = self._offset - len(self._last)
        return os.pread(fd, len(self._last), start) == self._last

    def _take(self, data: bytes) -> list[tuple[int, bytes]]:
        end = data.rfind(b"\n")
        if end < 0:
            return []  # only a partial line so far: wait for its newline
        out = []
        for raw in data[: end + 1].split(b"\n")[:-1]:
            self._line += 1
            if raw.strip():
                out.append((self._line, raw))
        whole = data[: end + 1]
        self._last = whole[whole.rfind(b"\n", 0, len(whole) - 1) + 1 :][-_CHECK:]
        self._offset += end + 1
        return out
