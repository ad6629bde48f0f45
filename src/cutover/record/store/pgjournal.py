"""The journal on Postgres: the same events, the same lines, the same hash chain (keyed where
a key is set) as the file, one sequence per cutover, appended in a transaction that also
NOTIFYs every listener. Read back incrementally (only rows after the last one verified, that
last one compared again) and verified as the file's reader verifies.

When the store cannot be reached, reads give what was last read (marked stale, with a
warning) and appends raise StoreUnavailable, an OSError: a rollback spills around it, and
every other action is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from cutover.record.chain import GENESIS, Chain, ChainProblem, View, event_line, parse_line
from cutover.record.checkpoint import Mark
from cutover.record.fields import event_fields
from cutover.record.journal import Event, JournalRead, Verification
from cutover.record.store.base import StoreProblem, StoreUnavailable
from cutover.record.store.pgschema import LOCK_SPACE, lock_key

if TYPE_CHECKING:
    from cutover.record.store.postgres import PostgresStore


class PgJournal:
    """The Journal's methods (append, read, verify, tail_since, head_words, action_lock),
    over the store's events table. `path` is the local journal path: where a rollback's
    records are spilled while the store cannot be reached."""

    def __init__(
        self,
        store: PostgresStore,
        *,
        path: Path,
        actor: str,
        host: str,
        key: bytes | None,
        redact: Callable[[str], str] | None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.store = store
        self.path = Path(path)
        self.actor, self.host = actor, host
        self.key = key or None
        self._redact = redact
        self._clock = clock or (lambda: datetime.now(UTC))
        self._reading = threading.Lock()
        # Every event from seq 1 (read, verify, export); and, once a checkpoint was taken,
        # only the events after it (the state's reads).
        self._full = _Follow(self.key)
        self._tail: _Follow | None = None
        self._last_chain: Chain | None = None  # the chain of the last read, for mark()
        self.acting: str | None = None  # what this process does under the move lock
        self.stale: str | None = None  # why the view may be behind; None when current
        self.read_at: datetime | None = None  # when the view was last read from the store
        self._append_key = lock_key(store.schema, store.cutover, "append")

    @property
    def redactor(self) -> Callable[[str], str] | None:
        return self._redact

    # -- writing ----------------------------------------------------------------------------

    def append(self, kind: str, /, **fields: Any) -> Event:
        """Write one event; returns once it is committed (durable, and notified)."""
        kind, plain = event_fields(kind, fields, self._redact)
        ts = self._clock()
        store = self.store
        t = store.schema

        async def write(conn: asyncpg.Connection) -> Event:
            async with conn.transaction():
                # One appender at a time per cutover: seq and prev are read and written
                # under it, as the file's writer does under its flock.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", LOCK_SPACE, self._append_key
                )
                last = await conn.fetchrow(
                    f"SELECT seq, hash, line FROM {t}.events WHERE cutover = $1 "
                    "ORDER BY seq DESC LIMIT 1",
                    store.cutover,
                )
                seq, prev = (last["seq"] + 1, line_hash(last)) if last else (1, GENESIS)
                event, line = event_line(
                    seq, ts, self.actor, self.host, kind, prev, plain, self.key
                )
                await conn.execute(
                    f"INSERT INTO {t}.events (cutover, seq, ts, kind, actor, host, hash, line) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    store.cutover,
                    seq,
                    event.ts,
                    kind,
                    self.actor,
                    self.host,
                    event.hash,
                    line.decode("utf-8").rstrip("\n"),
                )
                await store.notify(conn, "event", seq)
            return event

        return store.link.call(write)

    # -- reading ----------------------------------------------------------------------------

    def read(self) -> JournalRead:
        view, warnings = self._scan()
        return JournalRead(view.events, warnings, view.problem, view.notes)

    def read_from(self, mark: Mark) -> JournalRead | None:
        """The events after a checkpoint's mark, verified onto the chain as it stood there;
        None (read it all instead) unless the store still has the event the mark names,
        reachable now, and everything after it chains, whole."""
        with self._reading:
            tail = self._tail
            if tail is None or tail.mark != mark:
                tail = _Follow(self.key, mark)
            view = self._catch_up(tail, must=False)
            if view is None or view.problem is not None or tail.last_line is None:
                self._tail = None
                return None
            self._tail, self._last_chain = tail, tail.chain
        warnings = (self.stale,) if self.stale is not None else ()
        return JournalRead(view.events, warnings, None, view.notes)

    def mark(self) -> Mark | None:
        """Where the chain of the last read stands (for a checkpoint); None while broken."""
        with self._reading:
            chain = self._last_chain
            return Mark.of(chain) if chain is not None else None

    def tail_since(self, seq: int) -> tuple[Event, ...]:
        tail = self._tail
        if tail is not None and tail.mark is not None and tail.mark.seq <= seq:
            read = self.read_from(tail.mark)
            if read is not None:
                return _after(read.events, seq)
        view, _ = self._scan()
        return _after(view.events, seq)

    def verify(self) -> Verification:
        """The whole chain from seq 1, whatever was read before. The store must answer:
        a verification of what was read earlier would be no verification."""
        with self._reading:
            self._full.restart(self.key)
            view = self._catch_up(self._full, must=True)
            assert view is not None  # only a checkpoint's reader gives up
            self._last_chain = self._full.chain
        empty = f"the journal is empty (no events for cutover {self.store.cutover} yet)"
        return Verification.of(
            view, self.key, empty=None if view.events else empty, then=f"; in {self.store.where}"
        )

    def head_words(self) -> str:
        chain = self._last_chain
        if chain is None or chain.expected_seq == 1:
            return "journal head: no events yet"
        seq, last = chain.expected_seq - 1, chain.prev_hash
        return f"journal head seq {seq} {last}" + (" (keyed)" if self.key else "")

    def _scan(self) -> tuple[View, tuple[str, ...]]:
        with self._reading:
            view = self._catch_up(self._full, must=False)
            assert view is not None  # only a checkpoint's reader gives up
            self._last_chain = self._full.chain
        warnings: tuple[str, ...] = ()
        if self.stale is not None:
            warnings = (self.stale,)
        return view, warnings

    def _catch_up(self, f: _Follow, *, must: bool) -> View | None:
        """Read what was appended since `f` last read (nothing at all when no notification
        came and the connection is sound), verified onto the chain it read so far. None
        from a checkpoint's reader that finds the event it starts from gone or changed, or
        the store unreachable before it could check that."""
        store = self.store
        gen = store.generation("event")
        if gen == f.seen_gen and store.listening():
            return f.view
        try:
            rows = store.link.call(self._rows_since(f.last_seq))
        except (StoreUnavailable, StoreProblem) as exc:
            # A store that answers but refuses (a role without rights, a password rotated,
            # the schema gone) is read as one that cannot be reached: what was read before
            # stays, marked stale; every write is refused by it, and a rollback goes ahead.
            if must:
                raise
            unreachable = isinstance(exc, StoreUnavailable)
            self._said_stale(
                f"the state store cannot be reached ({exc.why})" if unreachable else str(exc)
            )
            return f.view if f.last_line is not None else None
        self.stale = None
        self.read_at = datetime.now(UTC)
        if f.last_line is None:  # a checkpoint's reader, first read: is its event there?
            assert f.mark is not None
            line = rows[0][1].encode("utf-8") + b"\n" if rows else b""
            if not rows or rows[0][0] != f.mark.seq or not f.mark.names(line):
                return None
            f.chain, f.last_line = f.mark.resume(self.key, line), line
            f.view = f.chain.read(b"")
            rows = rows[1:]
        elif f.last_seq and (not rows or rows[0][1].encode() != f.last_line.rstrip(b"\n")):
            if f.mark is not None:
                return None  # the event the checkpoint names is not what it was
            # The event verified last is not what it was: read the whole chain again, so
            # the change shows as the break it is.
            f.restart(self.key)
            rows = store.link.call(self._rows_since(0))
        elif f.last_seq:
            rows = rows[1:]
        if rows:
            data = b"".join(line.encode("utf-8") + b"\n" for _, line in rows)
            f.view = f.chain.read(data)
            f.last_seq, f.last_line = rows[-1][0], rows[-1][1].encode() + b"\n"
        f.high = max(f.high, f.last_seq)
        if f.high > f.last_seq and f.view.problem is None:
            f.view = _with_problem(f.view, self._removed(f.high, f.last_seq))
        f.seen_gen = gen
        return f.view

    def _rows_since(self, seq: int) -> Callable[[asyncpg.Connection], Any]:
        store = self.store

        async def fetch(conn: asyncpg.Connection) -> list[tuple[int, str]]:
            rows = await conn.fetch(
                f"SELECT seq, line FROM {store.schema}.events "
                "WHERE cutover = $1 AND seq >= $2 ORDER BY seq",
                store.cutover,
                seq,
            )
            return [(r[0], r[1]) for r in rows]

        return fetch

    def _removed(self, high: int, last: int) -> ChainProblem:
        span = f"seq {last + 1}" if high == last + 1 else f"seq {last + 1}–{high}"
        return ChainProblem(
            last + 1,
            None,
            f"{span}, read from the store earlier, is no longer in it: events were removed "
            "(the store refuses that to everyone who has not dropped its trigger)",
            f"{span} removed from the store",
        )

    def _said_stale(self, why: str) -> None:
        at = self.read_at
        since = f"{at:%H:%M:%S}Z" if at else "never: nothing could be read yet"
        self.stale = (
            f"{why}: showing the record as read at "
            f"{since} (stale); advance, step back, sign-off and raise are refused until it "
            "is back; a rollback still goes ahead, keeping its records locally"
        )

    # -- the move lock ----------------------------------------------------------------------

    @contextmanager
    def action_lock(self, what: str) -> Iterator[None]:
        """Only one process at a time may change traffic: a session advisory lock held by a
        connection of this process's own for the length of the move. Postgres frees it the
        moment that connection ends (a crash, kill -9); the row naming the holder is shown
        only while the lock is held. Non-blocking: ActionBusy names the holder."""
        held = self.store.take_move_lock(what, actor=self.actor, host=self.host)
        self.acting = what  # no checkpoint is written meanwhile (see Journal.acting)
        try:
            yield
        finally:
            self.acting = None
            held.release()


def line_hash(row: Any) -> str:
    """The hash an events row's line says: what the next event chains onto and what an
    export's head record names, as every reader verifies the lines (the file journal too
    chains onto its last readable line). Not the hash column beside it, which only indexes
    it: a column changed on its own would put the break on the honest event appended next."""
    parsed = parse_line(row["line"].encode("utf-8"))
    return parsed[0].hash if parsed is not None else row["hash"]


class _Follow:
    """One reader's place in the events: the chain verified so far and its view, the last
    event's line (compared again on each read), the highest seq ever seen (a store that
    ends before it has lost events: only an owner who dropped the trigger can do that), and
    the events generation (notifications) the view was read at. From seq 1, or from a
    checkpoint's mark (its event's line is read and checked first: `last_line` None)."""

    def __init__(self, key: bytes | None, mark: Mark | None = None):
        self.mark = mark
        self.restart(key)
        self.last_line: bytes | None = b"" if mark is None else None
        self.last_seq = 0 if mark is None else mark.seq
        self.high = self.last_seq

    def restart(self, key: bytes | None) -> None:
        """From seq 1 again (the highest seq seen stays: it is what shows a loss)."""
        self.chain = Chain(key)
        self.view: View = self.chain.read(b"")
        self.last_line, self.last_seq, self.seen_gen = b"", 0, -1


def _after(events: tuple[Event, ...], seq: int) -> tuple[Event, ...]:
    start = len(events)
    while start and events[start - 1].seq > seq:
        start -= 1
    return events[start:]


def _with_problem(view: View, problem: ChainProblem) -> View:
    return View(
        view.events,
        view.committed,
        view.warnings,
        problem,
        view.notes,
        view.lines,
        view.line_of,
    )
