"""The files store: the record beside the journal on this host, as cutover has always kept it.
The journal file and its head record, `<stem>.evidence.jsonl`, `<stem>.snapshots/`,
`<stem>.seen.json`, and the flock'ed `.lock` and `.watch.lock` files."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cutover.base.private import FILE_MODE, private_dir
from cutover.record import checkpoint, evidence, snapshots
from cutover.record.fields import iso_utc
from cutover.record.journal import Journal
from cutover.record.store.base import Store, WatcherRunning
from cutover.record.store.feed import FileFeed, LineFeed
from cutover.sources.results import QueryResult

WATCH_LOCK_SUFFIX = ".watch.lock"


class FilesStore(Store):
    kind = "files"

    def __init__(self, journal: Journal):
        self.journal = journal
        self.path = journal.path
        self.evidence_path = evidence.evidence_path(journal.path)
        self.snapshots_dir = snapshots.snapshots_dir(journal.path)
        # Baselines read so far, by stage: the exit snapshot files seen and the latest of them.
        self._baselines: dict[str, tuple[tuple[str, ...], snapshots.Snapshot | None]] = {}

    @property
    def where(self) -> str:
        return f"files beside {self.path}"

    @property
    def evidence_where(self) -> str:
        return str(self.evidence_path)

    # -- evidence ---------------------------------------------------------------------------

    def read_evidence(self, since: datetime | None = None) -> evidence.EvidenceRead:
        return evidence.read_evidence(self.evidence_path, since, key=self.journal.key)

    def evidence_feed(self) -> LineFeed:
        return FileFeed(self.evidence_path)

    # -- snapshots --------------------------------------------------------------------------

    def take_snapshot(
        self,
        stage: str,
        visit: int,
        label: str,
        results: Mapping[str, QueryResult],
        at: datetime,
    ) -> bool:
        return snapshots.take(self.snapshots_dir, stage, visit, label, results, at) is not None

    def snapshot_labels(self, stage: str, visit: int) -> set[str]:
        return snapshots.taken(self.snapshots_dir, stage, visit)

    def read_snapshot(self, stage: str, visit: int, label: str) -> snapshots.Snapshot | None:
        path = self.snapshots_dir / f"{stage}.{visit}.{label}.json"
        try:
            return snapshots.load(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return snapshots.Snapshot(
                stage, visit, label, None, {}, damaged=f"{path.name} is unreadable"
            )

    def baseline(self, stage: str) -> snapshots.Snapshot | None:
        """Cheap to ask as often as the console judges: a snapshot file is written once and
        never changed, so one is read again only when the files of its stage change."""
        folder = self.snapshots_dir
        pattern = f"{stage}.*.{snapshots.EXIT}.json"
        names = tuple(sorted(p.name for p in folder.glob(pattern))) if folder.is_dir() else ()
        seen = self._baselines.get(stage)
        if seen is None or seen[0] != names:
            seen = (names, snapshots.latest(folder, stage, snapshots.EXIT))
            self._baselines[stage] = seen
        return seen[1]

    # -- checkpoints: one file beside the journal, `<journal>.checkpoint` ------------------

    def load_checkpoint(self, runbook: str) -> bytes | None:
        return checkpoint.read_file(checkpoint.checkpoint_path(self.path))

    def save_checkpoint(self, runbook: str, seq: int, data: bytes) -> None:
        checkpoint.write_file(checkpoint.checkpoint_path(self.path), data)

    # -- seen markers -----------------------------------------------------------------------

    def last_seen(self, who: str) -> datetime | None:
        return last_seen(seen_path(self.path), who)

    def mark_seen(self, who: str, at: datetime) -> None:
        mark_seen(seen_path(self.path), who, at)

    # -- locks ------------------------------------------------------------------------------

    def watch_lead(self, *, actor: str, host: str) -> WatchLock:
        return WatchLock(self.path, actor=actor, host=host)

    def move_holder(self) -> str | None:
        """The lock is probed with a shared lock that is let go at once: a file lock left by
        a crash is no lock (the kernel drops it with its process), so the name in an
        unheld file is never shown as a holder."""
        try:
            fd = os.open(self.journal.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self.journal._holder(fd)[0]
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


# -- the seen marker: when each person last looked (a small JSON file) ------------------------


def seen_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.stem + ".seen.json")


def last_seen(path: Path, who: str) -> datetime | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return datetime.fromisoformat(data[who])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_seen(path: Path, who: str, at: datetime) -> None:
    """Remember when `who` last looked (atomic rename; 0600)."""
    private_dir(path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[who] = at.astimezone(UTC).isoformat()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, json.dumps(data).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# -- one watcher per journal: a flock on a file beside it ------------------------------------


def watch_lock_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + WATCH_LOCK_SUFFIX)


class WatchLock:
    """Held for the watcher's whole life; released by `release()` or by the process ending
    (the kernel drops a flock with its last descriptor, so a killed watcher leaves none).
    One host, one watcher: a second one is told who watches and leaves (no standby)."""

    standby = False

    def __init__(self, journal_path: Path, *, actor: str, host: str):
        self.path = watch_lock_path(Path(journal_path))
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
            holder = _watch_holder(fd)
            os.close(fd)
            raise WatcherRunning(holder, f"lock {self.path}") from None
        except BaseException:
            os.close(fd)
            raise
        since = iso_utc(now.replace(microsecond=0))
        record = {"actor": self.actor, "host": self.host, "pid": os.getpid(), "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record, ensure_ascii=False).encode("utf-8"), 0)
        self._fd = fd

    def check(self) -> str:
        return "leading" if self._fd is not None else "standby"

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


def _watch_holder(fd: int) -> str:
    raw = os.pread(fd, 64 * 1024, 0)
    try:
        h = json.loads(raw)
        return f"{h['actor']} on {h['host']} (pid {h['pid']}) since {h['since']}"
    except (ValueError, KeyError, TypeError):
        # Between the holder's lock and its write, or written by something else.
        text = raw.decode("utf-8", "replace").strip()[:200]
        return text or "another watcher (it has not said who yet)"
