"""The Postgres store (team mode): the record in one schema the whole team shares, each cutover
under its id. Every console and watcher on every host reads and writes the same journal,
evidence and snapshots; every append NOTIFYs, so the others see it at once; the move lock and
the watcher's lead are session advisory locks, freed by Postgres the moment their holder's
connection ends (a crash, kill -9, a host gone), with a row naming the holder beside each.

Three connections at most per process, each on the store's own loop thread (pglink): the
record (reads and appends), the listener (LISTEN, opened by whoever follows changes) and the
locks (opened by the first lock taken, kept while any is held)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from cutover.record import evidence, snapshots
from cutover.record.journal import Journal
from cutover.record.store import pgschema
from cutover.record.store.base import Store, StoreProblem, StoreUnavailable
from cutover.record.store.feed import Batch, LineFeed
from cutover.record.store.pgjournal import PgJournal
from cutover.record.store.pglink import Link, spawn
from cutover.record.store.pglocks import Locks, MoveLock, WatchLead, take_move_lock
from cutover.runbook.model import StateStore
from cutover.sources.results import QueryResult


def unset_words(config: StateStore) -> str:
    return (
        f"{config.dsn_env} is not set: this runbook keeps its record on Postgres ([store] "
        f'kind = "postgres"); export the state store\'s DSN (a writable role on schema '
        f"{config.schema}, never the read-only role of the validation queries) in it"
    )


class PostgresStore(Store):
    kind = "postgres"

    def __init__(
        self,
        config: StateStore,
        environ: Mapping[str, str],
        *,
        local: Journal,
        redact: Callable[[str], str] | None = None,
    ):
        self.config = config
        self.schema, self.cutover = config.schema, config.cutover
        # Unset, the store is as unreachable: reads and appends fail saying so, and a
        # rollback still goes ahead (spilled here), as when the network is down.
        self._dsn = environ.get(config.dsn_env, "").strip()
        self.unset = None if self._dsn else unset_words(config)
        dsn = self._dsn

        def words(text: str) -> str:
            # The session's redactor knows the DSN's forms; this is the last line of defence.
            text = redact(text) if redact is not None else text
            return text.replace(dsn, "[the state store's DSN]")

        self.words = words
        self.link = Link(
            dsn, name="record", words=words, setup=self._ready_schema, unset=self.unset
        )
        self._listen: Link | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._generations: dict[str, int] = {}
        self._gen_lock = threading.Lock()
        self.locks = Locks(self)
        self.problem: str | None = None  # what makes the store unusable for locks and LISTEN
        self._snap_cache: dict[str, tuple[int, snapshots.Snapshot | None]] = {}
        self.journal = PgJournal(
            self,
            path=local.path,
            actor=local.actor,
            host=local.host,
            key=local.key,
            redact=redact,
        )

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r}, cutover={self.cutover!r})"

    @property
    def where(self) -> str:
        return f"the state store (Postgres schema {self.schema}, cutover {self.cutover})"

    @property
    def evidence_where(self) -> str:
        return f"the state store's evidence (schema {self.schema})"

    # -- connections ------------------------------------------------------------------------

    async def _ready_schema(self, conn: asyncpg.Connection) -> None:
        """Each new connection: the schema is there at the version this cutover knows, and
        this cutover has its row (the first process to use an id creates it)."""
        s = self.schema
        try:
            # One round trip (a console opening pays it): the version, and this cutover's row
            # added only when the version is the one this code writes.
            at = await conn.fetchval(
                f"WITH v AS (SELECT max(version) AS at FROM {s}.meta), "
                f"added AS (INSERT INTO {s}.cutovers (id) SELECT $1 FROM v WHERE v.at = $2 "
                "ON CONFLICT DO NOTHING) SELECT at FROM v",
                self.cutover,
                pgschema.VERSION,
            )
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            at = None
        except asyncpg.PostgresError as exc:
            raise StoreProblem(self.words(f"the state store refused: {exc}")) from None
        if at is None:
            raise StoreProblem(
                f"the state store has no cutover schema {s} yet: run `cutover store init` "
                "once (as the schema's owner) to create it"
            )
        if at != pgschema.VERSION:
            newer = at > pgschema.VERSION
            raise StoreProblem(
                f"the state store's schema {s} is at version {at}; this cutover knows version "
                f"{pgschema.VERSION}: "
                + ("upgrade cutover" if newer else "run `cutover store init` to upgrade it")
            )

    async def notify(self, conn: asyncpg.Connection, what: str, detail: Any = "") -> None:
        """Inside the writer's transaction: delivered on commit, never for a rolled-back one."""
        payload = f"{self.cutover} {what} {detail}"
        await conn.execute("SELECT pg_notify($1, $2)", pgschema.channel(self.schema), payload)

    async def pooled_with(self, conn: asyncpg.Connection) -> bool:
        """Is `conn` reaching the server through a transaction pooler? Two connections of one
        process always have two server sessions, directly or through a session pooler; a
        transaction pooler hands an idle one's server session to the next (PgBouncer,
        Supavisor), and then session locks and LISTEN do not hold."""
        other = await self.link.acall(_backend)
        return other == await _backend(conn)

    def generation(self, what: str) -> int:
        """How many notifications of `what` (or reconnections) were heard: a reader that saw
        this number before and sees it again has nothing new to read."""
        return self._generations.get(what, 0)

    def listening(self) -> bool:
        """Notifications are being heard, lately confirmed: their absence means no change."""
        return self._listen is not None and self._listen.fresh()

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        self.follow()

    def follow(self) -> None:
        """Start listening (once): every later read asks the store only after a change."""
        if self._listen is not None:
            return
        channel = pgschema.channel(self.schema)

        def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            cutover, _, rest = payload.partition(" ")
            if cutover == self.cutover:
                self._bump(rest.split(" ", 1)[0])

        async def setup(conn: asyncpg.Connection) -> None:
            if await self.pooled_with(conn):
                raise StoreProblem(POOLED)
            await conn.add_listener(channel, heard)

        self._listen = Link(
            self._dsn,
            unset=self.unset,
            name="listen",
            words=self.words,
            setup=setup,
            on_up=lambda: self._bump("*"),  # notifications may have been missed: read all
            on_down=lambda: self._bump("*"),
            ping=True,
            keepalive=True,
        )

        async def nothing(conn: asyncpg.Connection) -> None:
            return None

        listen = self._listen

        async def start() -> None:
            # Not up: it keeps retrying; reads meanwhile ask the store every time. Behind a
            # transaction pooler a LISTEN would miss notifications: never listen there.
            try:
                await listen.acall(nothing)
            except StoreProblem as exc:
                if str(exc) != POOLED:
                    # Refused (a role without rights yet, a password being rotated): the
                    # store may take it later, and then is listened to.
                    listen.keep_trying()
                    return
                self.problem = str(exc)
                listen.close()
            except StoreUnavailable:
                pass

        spawn(start())  # a console opening never waits for it

    def _bump(self, what: str) -> None:
        with self._gen_lock:
            kinds = ("event", "evidence", "snapshot", "lock") if what == "*" else (what,)
            for kind in kinds:
                self._generations[kind] = self._generations.get(kind, 0) + 1
        for callback in list(self._callbacks):
            with contextlib.suppress(Exception):  # a callback only schedules work
                callback()

    @property
    def stale(self) -> str | None:
        return self.journal.stale

    def close(self) -> None:
        self.locks.close()
        if self._listen is not None:
            self._listen.close()
        self.link.close()

    # -- evidence ---------------------------------------------------------------------------

    def _evidence_sink(self) -> Callable[[list[evidence.Run], list[bytes]], None]:
        return self._put_evidence

    def _put_evidence(self, runs: list[evidence.Run], lines: list[bytes]) -> None:
        rows = [
            _evidence_row(self.cutover, run, line) for run, line in zip(runs, lines, strict=True)
        ]
        self.put_evidence_rows(rows)

    def put_evidence_rows(self, rows: list[tuple]) -> None:
        t = self.schema

        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(
                    f"INSERT INTO {t}.evidence (cutover, run, what, name, stage, verdict, "
                    "first_at, last_at, written_by, line) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    rows,
                )
                await self.notify(conn, "evidence", len(rows))

        self.link.call(write)

    def read_evidence(self, since: datetime | None = None) -> evidence.EvidenceRead:
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> list:
            return await conn.fetch(
                f"SELECT id, line FROM {t}.evidence WHERE cutover = $1 "
                "AND ($2::timestamptz IS NULL OR last_at >= $2) ORDER BY id",
                self.cutover,
                since,
            )

        rows = self.link.call(fetch)
        lines = ((r[0], r[1].encode("utf-8"), True) for r in rows)
        return evidence.fold_lines(lines, since, key=self.journal.key)

    def evidence_feed(self) -> LineFeed:
        return RowFeed(self)

    # -- snapshots --------------------------------------------------------------------------

    def take_snapshot(
        self,
        stage: str,
        visit: int,
        label: str,
        results: Mapping[str, QueryResult],
        at: datetime,
    ) -> bool:
        body = snapshots.encode(stage, visit, label, results, at).decode("utf-8")
        return self.put_snapshot(stage, visit, label, at, body)

    def put_snapshot(self, stage: str, visit: int, label: str, at: datetime, body: str) -> bool:
        t = self.schema

        async def write(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                done = await conn.fetchval(
                    f"INSERT INTO {t}.snapshots (cutover, stage, visit, label, at, body) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
                    self.cutover,
                    stage,
                    visit,
                    label,
                    at,
                    body,
                )
                if done:
                    await self.notify(conn, "snapshot", f"{stage}.{visit}.{label}")
            return bool(done)

        return self.link.call(write)

    def snapshot_labels(self, stage: str, visit: int) -> set[str]:
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> list:
            return await conn.fetch(
                f"SELECT label FROM {t}.snapshots WHERE cutover = $1 AND stage = $2 AND visit = $3",
                self.cutover,
                stage,
                visit,
            )

        return {r[0] for r in self.link.call(fetch)}

    def read_snapshot(self, stage: str, visit: int, label: str) -> snapshots.Snapshot | None:
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> str | None:
            return await conn.fetchval(
                f"SELECT body FROM {t}.snapshots WHERE cutover = $1 AND stage = $2 "
                "AND visit = $3 AND label = $4",
                self.cutover,
                stage,
                visit,
                label,
            )

        body = self.link.call(fetch)
        if body is None:
            return None
        try:
            return snapshots.decode(body.encode("utf-8"))
        except (ValueError, KeyError, TypeError, IndexError):
            return snapshots.Snapshot(
                stage, visit, label, None, {}, damaged="its row is unreadable"
            )

    def baseline(self, stage: str) -> snapshots.Snapshot | None:
        """Read again only after a snapshot was notified (or every time, not listening);
        the store unreachable, the last one read stands (a snapshot never changes)."""
        gen = self.generation("snapshot")
        known = self._snap_cache.get(stage)
        if known is not None and known[0] == gen and self.listening():
            return known[1]
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(
                f"SELECT visit, body FROM {t}.snapshots WHERE cutover = $1 AND stage = $2 "
                "AND label = $3 ORDER BY visit DESC LIMIT 1",
                self.cutover,
                stage,
                snapshots.EXIT,
            )

        try:
            row = self.link.call(fetch)
        except (StoreUnavailable, StoreProblem):  # cannot be read now: as it was known
            return known[1] if known is not None else None
        found = None
        if row is not None:
            try:
                found = snapshots.decode(row[1].encode("utf-8"))
            except (ValueError, KeyError, TypeError, IndexError):
                found = snapshots.Snapshot(
                    stage, row[0], snapshots.EXIT, None, {}, damaged="its row is unreadable"
                )
        self._snap_cache[stage] = (gen, found)
        return found

    # -- checkpoints (#20): rows, the latest for this cutover and runbook read -------------

    def load_checkpoint(self, runbook: str) -> bytes | None:
        """The latest checkpoint for `runbook`, keyed journals only. Without a key, anyone
        who may append may also insert a checkpoint with its hash recomputed, and it would
        show a state no event in the journal says, while the journal still verifies; the
        events, which cannot be changed, are read whole instead."""
        if self.journal.key is None:
            return None
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> str | None:
            return await conn.fetchval(
                # Not past the last event: a row at a seq the journal never reached (a
                # writer's junk, which cannot be deleted) would else be the latest for good.
                f"SELECT body FROM {t}.checkpoints WHERE cutover = $1 AND runbook = $2 "
                f"AND seq <= (SELECT coalesce(max(seq), 0) FROM {t}.events WHERE cutover = $1) "
                "ORDER BY seq DESC LIMIT 1",
                self.cutover,
                runbook,
            )

        try:
            body = self.link.call(fetch)
        except OSError:  # unreachable, or refused (no right to it yet): read it all
            return None
        return body.encode("utf-8") if isinstance(body, str) else None

    def save_checkpoint(self, runbook: str, seq: int, data: bytes) -> None:
        if self.journal.key is None:
            return  # never read (load_checkpoint): not kept either
        t = self.schema

        async def write(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO {t}.checkpoints (cutover, runbook, seq, body) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                self.cutover,
                runbook,
                seq,
                data.decode("utf-8").rstrip("\n"),
            )

        self.link.call(write)  # StoreUnavailable or StoreProblem (OSErrors): ignored above

    # -- seen markers -----------------------------------------------------------------------

    def last_seen(self, who: str) -> datetime | None:
        t = self.schema

        async def fetch(conn: asyncpg.Connection) -> datetime | None:
            return await conn.fetchval(
                f"SELECT at FROM {t}.seen WHERE cutover = $1 AND who = $2", self.cutover, who
            )

        try:
            return self.link.call(fetch)
        except (StoreUnavailable, StoreProblem):  # cannot be read now: never seen, as yet
            return None

    def mark_seen(self, who: str, at: datetime) -> None:
        t = self.schema

        async def write(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO {t}.seen (cutover, who, at) VALUES ($1, $2, $3) "
                "ON CONFLICT (cutover, who) DO UPDATE SET at = EXCLUDED.at",
                self.cutover,
                who,
                at,
            )

        self.link.call(write)

    # -- locks ------------------------------------------------------------------------------

    def watch_lead(self, *, actor: str, host: str) -> WatchLead:
        return WatchLead(self, actor=actor, host=host)

    def take_move_lock(self, what: str, *, actor: str, host: str) -> MoveLock:
        return take_move_lock(self, what, actor=actor, host=host)

    def move_holder(self) -> str | None:
        holder = self.locks.holder("move")
        return holder[0] if holder else None


async def _backend(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT pg_backend_pid()")


POOLED = (
    "the state store is reached through a transaction pooler (PgBouncer or Supavisor in "
    "transaction mode, Supabase's port 6543): session locks and LISTEN do not hold there, "
    "so no move lock or watcher lead could be trusted; point the store's DSN at a session "
    "pooler (Supabase: port 5432) or straight at the server"
)


def _evidence_row(cutover: str, run: evidence.Run, line: bytes) -> tuple:
    return (
        cutover,
        run.run,
        run.what,
        run.name,
        run.stage,
        run.verdict,
        run.first,
        run.last,
        run.by,
        line.decode("utf-8").rstrip("\n"),
    )


def evidence_row(cutover: str, line: bytes, key: bytes | None) -> tuple:
    """An evidence file's line as the store keeps it (for import)."""
    return _evidence_row(cutover, evidence.decode_run(line, key), line)


class RowFeed:
    """The evidence rows of one cutover, followed by id: a read asks only for rows after the
    last one read, and (listening) only after a notification said there are some."""

    def __init__(self, store: PostgresStore):
        self.store = store
        self._last = 0
        self._gen = -1

    def restart(self) -> None:
        self._last, self._gen = 0, -1

    def read(self) -> Batch:
        store = self.store
        gen = store.generation("evidence")
        if gen == self._gen and store.listening():
            return Batch()
        t, since = store.schema, self._last

        async def fetch(conn: asyncpg.Connection) -> list:
            return await conn.fetch(
                f"SELECT id, line FROM {t}.evidence WHERE cutover = $1 AND id > $2 ORDER BY id",
                store.cutover,
                since,
            )

        rows = store.link.call(fetch)  # StoreUnavailable is an OSError, as a file's would be
        self._gen = gen
        if rows:
            self._last = rows[-1][0]
        return Batch(False, [(r[0], r[1].encode("utf-8")) for r in rows])
