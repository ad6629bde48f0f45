"""Where the report reads the record: the one place that knows where it is. The journal and
the evidence come through the session's store (files beside the journal, or the team's
Postgres); so do the snapshots' labels and each stage's latest exit. The store interface has
no call yet for a snapshot's contents or a past visit's exit: those are read from the files
store's folder, and a team store's report says which checkpoints it could not open."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cutover.judge.session import Session
from cutover.record import snapshots
from cutover.record.journal import JournalRead, Verification
from cutover.report.timeline import Readings

# What a snapshot file that cannot be read raises: skipped or said, never a traceback.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, IndexError)


class RecordSource:
    """The record of one runbook, read once, for one report."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.store = session.store
        self.folder: Path = snapshots.snapshots_dir(session.runbook.journal_path)
        # Whether a snapshot's contents can be opened (the files store's folder).
        self.contents = self.store.kind == "files"

    def journal(self) -> JournalRead:
        return self.session.journal.read()

    def verify(self) -> Verification:
        return self.session.journal.verify()

    @property
    def keyed(self) -> bool:
        return self.session.journal.key is not None

    def readings(self) -> Readings:
        """Every line of the evidence, as series and folded runs."""
        found = Readings(self.session.store.evidence_feed(), self.session.journal.key)
        found.read()
        return found

    def snapshot_labels(self, stage: str, visit: int) -> set[str]:
        return self.store.snapshot_labels(stage, visit)

    def snapshot(self, stage: str, visit: int, label: str) -> snapshots.Snapshot:
        """One visit's snapshot; raises one of UNREADABLE when it cannot be read (or, with
        a team store, opened by the report)."""
        if not self.contents:
            raise OSError(f"snapshot {stage}.{visit}.{label} is in {self.store.where}")
        return snapshots.load(self.folder / f"{stage}.{visit}.{label}.json")

    def exits(self, stage: str) -> list[snapshots.Snapshot]:
        """Every readable exit snapshot of `stage`, oldest first (the baselines it gave);
        with a team store, its latest only."""
        if not self.contents:
            latest = self.store.baseline(stage)
            return [latest] if latest is not None and latest.at is not None else []
        return self._loaded(f"{stage}.*.{snapshots.EXIT}.json")

    def between(self, start: datetime, end: datetime) -> list[snapshots.Snapshot]:
        """Every readable snapshot of any stage taken in [start, end], oldest first."""
        return [s for s in self._loaded("*.json") if s.at is not None and start <= s.at <= end]

    def _loaded(self, pattern: str) -> list[snapshots.Snapshot]:
        if not self.contents or not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob(pattern)):
            try:
                found.append(snapshots.load(path))
            except UNREADABLE:
                continue
        return sorted(found, key=lambda s: (s.at is None, s.at, s.stage, s.visit, s.label))
