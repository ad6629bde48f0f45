"""What a state store is: where the record lives (the journal, the evidence, the snapshots,
the seen markers and the locks), behind one interface. The Session opens one; nothing above
it knows which. Files beside the journal (the default) or a Postgres schema the whole team
shares (team mode)."""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cutover.base.errors import CutoverError
from cutover.record import evidence

if TYPE_CHECKING:
    from cutover.record.snapshots import Snapshot
    from cutover.record.store.feed import LineFeed
    from cutover.sources.results import QueryResult


class StoreUnavailable(CutoverError, OSError):
    """The store cannot be reached (the network, the server, a timeout). An OSError, like a
    disk that cannot be written: what a rollback spills around, and what refuses every other
    action. Its words never carry the DSN."""

    def __init__(self, why: str):
        self.why = why
        OSError.__init__(self, errno.EIO, why)
        self.strerror = (
            f"the state store cannot be reached ({why}): nothing can be recorded, so "
            "advance, step back, sign-off and raise are refused until it is back; a rollback "
            "still goes ahead and keeps its records locally until then"
        )

    def __str__(self) -> str:
        return self.strerror

    @property
    def short(self) -> str:
        """What happened without what follows from it: for a line that says that itself (a
        rollback's record kept locally)."""
        return f"the state store cannot be reached: {self.why}"


class StoreProblem(CutoverError, OSError):
    """The store answers but is not usable as it is (no schema yet, an older version, a
    transaction pooler in the way, a role without rights): the message says what to do.
    Also an OSError: a rollback goes ahead through it (spilling its records), as through a
    journal that cannot be written; every other action is refused by it."""

    def __init__(self, message: str):
        OSError.__init__(self, errno.EIO, message)
        self.strerror = message

    def __str__(self) -> str:
        return self.strerror


class WatcherRunning(CutoverError):
    """Another watcher holds this journal; `holder` says who, where, since when."""

    def __init__(self, holder: str, where: str):
        self.holder = holder
        super().__init__(
            f"another watcher is already watching this journal: {holder} ({where}); one "
            "watcher per journal: stop that one first, or leave it watching"
        )


class WatchLead(Protocol):
    """The right to evaluate and act for a cutover: one watcher at a time holds it."""

    standby: bool  # True: a second watcher waits to take over instead of leaving

    def acquire(self, now: datetime) -> None:
        """Take it or raise WatcherRunning (naming the holder)."""

    def check(self) -> str:
        """ "leading", "standby" (not taken) or "lost" (taken, and its hold has ended:
        another watcher may lead now, so this one must stop acting)."""

    def release(self) -> None: ...

    def __enter__(self) -> WatchLead: ...

    def __exit__(self, *exc: object) -> None: ...


class Store(ABC):
    """One cutover's record. `journal` is the journal (append, read, verify, tail_since,
    action_lock, head_words; actor, host, key); the rest is what the judge, the watcher and
    the console read and write besides."""

    kind: str  # "files" or "postgres"
    journal: Any  # record.journal.Journal or the Postgres store's journal: the same methods

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the record is, in words (never a DSN)."""

    @property
    def evidence_where(self) -> str:
        """Where the evidence is, in words, for a message about it."""
        return f"the evidence of {self.where}"

    # -- evidence ---------------------------------------------------------------------------

    def evidence_writer(
        self,
        by: str,
        *,
        break_s: float,
        flush_s: float,
        redact: Callable[[str], str] | None,
        clock: Callable[[], datetime],
    ) -> evidence.EvidenceStore:
        """The writer of this cutover's evidence runs, keyed as the journal is: into the file
        beside the journal, or into what `_evidence_sink` names instead."""
        return evidence.EvidenceStore(
            evidence.evidence_path(self.journal.path),  # never written when there is a sink
            by=by,
            break_s=break_s,
            flush_s=flush_s,
            redact=redact,
            clock=clock,
            key=self.journal.key,
            sink=self._evidence_sink(),
        )

    def _evidence_sink(self) -> Callable[[list[evidence.Run], list[bytes]], None] | None:
        """Where the evidence runs go instead of the file (with their encoded lines); None:
        the file."""
        return None

    @abstractmethod
    def read_evidence(self, since: datetime | None = None) -> evidence.EvidenceRead: ...

    @abstractmethod
    def evidence_feed(self) -> LineFeed:
        """A fresh follower of the evidence lines (each reader keeps its own position)."""

    # -- snapshots --------------------------------------------------------------------------

    @abstractmethod
    def take_snapshot(
        self,
        stage: str,
        visit: int,
        label: str,
        results: Mapping[str, QueryResult],
        at: datetime,
    ) -> bool:
        """Write one snapshot unless it exists (the first writer wins); True when written."""

    @abstractmethod
    def snapshot_labels(self, stage: str, visit: int) -> set[str]: ...

    @abstractmethod
    def read_snapshot(self, stage: str, visit: int, label: str) -> Snapshot | None:
        """One snapshot whole (None when it was never taken; `damaged` when unreadable)."""

    @abstractmethod
    def baseline(self, stage: str) -> Snapshot | None:
        """The latest exit snapshot of `stage`: cheap to ask every second."""

    # -- seen markers -----------------------------------------------------------------------

    @abstractmethod
    def last_seen(self, who: str) -> datetime | None: ...

    @abstractmethod
    def mark_seen(self, who: str, at: datetime) -> None: ...

    # -- locks ------------------------------------------------------------------------------

    @abstractmethod
    def watch_lead(self, *, actor: str, host: str) -> WatchLead: ...

    @abstractmethod
    def move_holder(self) -> str | None:
        """Who holds the move lock now (user, host, pid, since, doing what), or None."""

    # -- checkpoints (#20) ------------------------------------------------------------------

    def load_checkpoint(self, runbook: str) -> bytes | None:
        """The latest checkpoint kept for this cutover under the runbook digest `runbook`
        (record/checkpoint.py decodes and verifies it), or None: none, or unreadable. Never
        raises: a checkpoint is a cache, and without one the whole journal is read."""
        return None

    def save_checkpoint(self, runbook: str, seq: int, data: bytes) -> None:
        """Keep a checkpoint made at event `seq`. May raise OSError (a full disk, the store
        unreachable): the caller ignores it, as it is only a cache."""
        return None

    # -- live -------------------------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        """`callback` is called (from any thread: it must only schedule work) when another
        process wrote to the journal or took or freed a lock. The files store never calls it:
        its readers poll."""
        return None

    def follow(self) -> None:
        """Start hearing other processes' writes, so reads between them cost nothing (the
        files store's readers poll: nothing to start)."""
        return None

    @property
    def stale(self) -> str | None:
        """Why what was last read may be behind (the store unreachable since …), or None."""
        return None

    def close(self) -> None:
        """Let go of connections and threads (a process that ends needs not)."""
        return None
