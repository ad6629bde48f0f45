"""The evidence file followed incrementally, for a process that judges it every few seconds
for weeks: each read costs only the bytes appended since the last one, and only the runs a
judgement can still need are kept (what was written is not kept twice in memory)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from cutover.record.evidence import Run, decode_run


class EvidenceTail:
    def __init__(self, path: Path, key: bytes | None = None):
        self.path = Path(path)
        self.key = key
        self._ident: tuple[int, int] | None = None  # (dev, inode) of the file read so far
        self._offset = 0
        self._partial = b""  # a last line still being written
        self._runs: dict[str, Run] = {}
        self._ordered: tuple[Run, ...] | None = ()
        self.skipped = 0  # lines that were not evidence (a torn line, an edit)
        self.problem: str | None = None  # why the last read failed (what was read stays)

    def read(self) -> None:
        """Fold what was appended since the last read. A file replaced or shortened is read
        again from its start; one that cannot be read leaves what was read (and `problem`)."""
        try:
            self._read()
            self.problem = None
        except OSError as exc:  # something else in its place, a permission, a disk
            self.problem = str(exc)

    def _read(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self._ident is not None:
                self.restart()
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # no append is half-visible
            st = os.fstat(fd)
            ident = (st.st_dev, st.st_ino)
            if ident != self._ident or st.st_size < self._offset:
                self.restart()
                self._ident = ident
            if st.st_size == self._offset:
                return
            data = os.pread(fd, st.st_size - self._offset, self._offset)
            self._offset = st.st_size
        finally:
            os.close(fd)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        for raw in data[:cut].split(b"\n"):
            if raw:
                self._fold(raw)

    def _fold(self, raw: bytes) -> None:
        try:
            run = decode_run(raw, self.key)
        except (ValueError, KeyError, TypeError, IndexError):
            self.skipped += 1
            return
        known = self._runs.get(run.run)
        if known is None or run.last >= known.last:
            self._runs[run.run] = run
            self._ordered = None

    def restart(self) -> None:
        """Forget everything: the next read starts from the first byte."""
        self._ident, self._offset, self._partial = None, 0, b""
        self._runs, self._ordered = {}, ()

    def trim(self, keep: Callable[[Run], bool]) -> None:
        """Drop the runs no judgement needs any more."""
        gone = [key for key, run in self._runs.items() if not keep(run)]
        for key in gone:
            del self._runs[key]
        if gone:
            self._ordered = None

    @property
    def runs(self) -> tuple[Run, ...]:
        """The runs kept, oldest first (as `read_evidence` gives them)."""
        if self._ordered is None:
            self._ordered = tuple(sorted(self._runs.values(), key=lambda r: (r.first, r.run)))
        return self._ordered

    def __len__(self) -> int:
        return len(self._runs)
