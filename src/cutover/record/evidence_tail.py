"""The evidence file followed incrementally, for a process that judges it every few seconds
for weeks: each read costs only the bytes appended since the last one, and only the runs a
judgement can still need are kept (what was written is not kept twice in memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cutover.record.evidence import Run, decode_run
from cutover.record.store.feed import FileFeed, LineFeed


class EvidenceTail:
    def __init__(self, source: Path | LineFeed, key: bytes | None = None):
        # A path is the files store's evidence; the Postgres store hands a feed of its rows.
        self.feed: LineFeed = FileFeed(source) if isinstance(source, Path | str) else source
        self.key = key
        self._runs: dict[str, Run] = {}
        self._ordered: tuple[Run, ...] | None = ()
        self.skipped = 0  # lines that were not evidence (a torn line, an edit)
        self.problem: str | None = None  # why the last read failed (what was read stays)

    def read(self) -> bool:
        """Fold what was appended since the last read; True when anything was. A file
        replaced or shortened is read again from its start; one that cannot be read leaves
        what was read (and `problem`)."""
        try:
            batch = self.feed.read()
            self.problem = None
        except OSError as exc:  # something else in its place, a permission, a disk, the store
            self.problem = str(exc)
            return False
        if batch.restarted:
            self._forget()
        for _, raw in batch.lines:
            self._fold(raw)
        return batch.restarted or bool(batch.lines)

    def _fold(self, raw: bytes) -> None:
        try:
            run = decode_run(raw, self.key)
        except (ValueError, KeyError, TypeError, IndexError):
            self.skipped += 1
            return
        self._take(run)

    def _take(self, run: Run) -> None:
        """One line of a run: the run as it now stands (a follower may keep more of it)."""
        known = self._runs.get(run.run)
        if known is None or run.last >= known.last:
            self._runs[run.run] = run
            self._ordered = None

    def restart(self) -> None:
        """Forget everything: the next read starts from the first line."""
        self.feed.restart()
        self._forget()

    def _forget(self) -> None:
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
