"""Team mode's locks: named session advisory locks ("move", "watch") of one cutover, taken on
a connection of the process's own and freed by Postgres the moment that connection ends (a
crash, kill -9, a host gone), each with a row naming its holder beside it."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from cutover.record.journal import ActionBusy
from cutover.record.store import pgschema
from cutover.record.store.base import StoreProblem, StoreUnavailable, WatcherRunning
from cutover.record.store.pglink import Link

if TYPE_CHECKING:
    from cutover.record.store.postgres import PostgresStore


class Locks:
    """Named locks of one cutover ("move", "watch"), each a session advisory lock taken on
    this process's lock connection and a row naming its holder. Postgres frees the lock when
    the connection ends; the row is shown only while pg_locks says that backend holds it."""

    def __init__(self, store: PostgresStore):
        self.store = store
        self._link: Link | None = None
        # Each lock held, with the connection it is held on: a new connection holds none.
        self._held: dict[str, Any] = {}
        self._guard = threading.Lock()

    def _key(self, name: str) -> int:
        return pgschema.lock_key(self.store.schema, self.store.cutover, name)

    def link(self) -> Link:
        with self._guard:
            if self._link is None:
                # No retry in the background: a lost lock connection has lost its locks, and
                # whoever held them must hear it, not find a new connection holding nothing.
                self._link = Link(
                    self.store._dsn,
                    unset=self.store.unset,
                    name="locks",
                    words=self.store.words,
                    setup=self.store._ready_schema,
                    retry=False,
                    keepalive=True,
                    ping=True,  # a holder whose network died silently finds out it lost them
                )
            return self._link

    def try_take(self, name: str, what: str, *, actor: str, host: str) -> str | None:
        """Take the lock without waiting: None when taken, else who holds it (in words)."""
        store, key = self.store, self._key(name)
        t = store.schema

        async def take(conn: asyncpg.Connection) -> bool:
            if await store.pooled_with(conn):
                raise _Pooled()
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", pgschema.LOCK_SPACE, key
            )
            if not got:
                return False
            # Through a transaction pooler the next statement may run on another server
            # session, which does not hold the lock: then no session lock can be trusted.
            mine = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = $1 AND objid = $2",
                pgschema.LOCK_SPACE,
                key,
            )
            if not mine:
                raise _Pooled()
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {t}.locks (cutover, name, actor, host, pid, what, since, "
                    "backend) VALUES ($1, $2, $3, $4, $5, $6, $7, pg_backend_pid()) "
                    "ON CONFLICT (cutover, name) DO UPDATE SET actor = EXCLUDED.actor, "
                    "host = EXCLUDED.host, pid = EXCLUDED.pid, what = EXCLUDED.what, "
                    "since = EXCLUDED.since, backend = EXCLUDED.backend",
                    store.cutover,
                    name,
                    actor,
                    host,
                    os.getpid(),
                    what,
                    datetime.now(UTC),
                )
                await store.notify(conn, "lock", f"{name} taken")
            return True

        try:
            taken = self.link().call(take)
        except _Pooled:
            from cutover.record.store.postgres import POOLED

            raise StoreProblem(POOLED) from None
        if taken:
            self._held[name] = self.link().conn
            return None
        holder = self.holder(name)
        return holder[0] if holder else "another process (it has not said who yet)"

    def holder(self, name: str) -> tuple[str, str] | None:
        """(who, in words; what they said they are doing), only while the lock is held."""
        store, key = self.store, self._key(name)
        t = store.schema

        async def fetch(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(
                f"SELECT l.actor, l.host, l.pid, l.what, l.since FROM {t}.locks l "
                "JOIN pg_locks p ON p.pid = l.backend AND p.locktype = 'advisory' "
                "AND p.granted AND p.classid = $3 AND p.objid = $4 "
                "WHERE l.cutover = $1 AND l.name = $2",
                store.cutover,
                name,
                pgschema.LOCK_SPACE,
                key,
            )

        row = store.link.call(fetch)
        if row is None:
            return None
        since = row["since"].astimezone(UTC).replace(microsecond=0).isoformat()
        since = since.replace("+00:00", "Z")
        who = f"{row['actor']} on {row['host']} (pid {row['pid']})"
        if name == "move":
            return f"{who} is running {row['what']!r} since {since}", row["what"]
        return f"{who} since {since}", row["what"]

    def release(self, name: str) -> None:
        if name not in self._held:
            return
        conn = self._held.pop(name)
        if not self._on(conn):
            return  # its connection is gone, and the lock with it
        store, key = self.store, self._key(name)
        t = store.schema

        async def free(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"DELETE FROM {t}.locks WHERE cutover = $1 AND name = $2 "
                "AND backend = pg_backend_pid()",
                store.cutover,
                name,
            )
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", pgschema.LOCK_SPACE, key)
            await store.notify(conn, "lock", f"{name} freed")

        link = self._link
        if link is None:
            return
        try:
            link.call(free)
        except (StoreUnavailable, StoreProblem):
            link.close()  # the connection's end frees whatever it still holds
            with self._guard:
                self._link = None

    def held(self, name: str) -> bool:
        """Is `name` still held: taken on the connection that is still up?"""
        return name in self._held and self._on(self._held[name])

    def _on(self, conn: Any) -> bool:
        link = self._link
        return link is not None and conn is not None and link.conn is conn and not conn.is_closed()

    def close(self) -> None:
        if self._link is not None:
            self._link.close()


class _Pooled(Exception):
    pass


class MoveLock:
    def __init__(self, locks: Locks):
        self.locks = locks

    def release(self) -> None:
        self.locks.release("move")


def take_move_lock(store: PostgresStore, what: str, *, actor: str, host: str) -> MoveLock:
    """The move lock or ActionBusy naming its holder; StoreUnavailable (an OSError) when
    the store cannot be reached, which a rollback goes ahead through."""
    record = store.link
    if record.conn is None and record.down_since is not None:
        # This process has just found the store unreachable: a lock connection would only
        # wait out its own connect timeout (seconds on a host that is gone), and a rollback
        # must not wait for anything; no other move could be recorded anyway.
        raise StoreUnavailable(record.why or "it did not answer")
    holder = store.locks.try_take("move", what, actor=actor, host=host)
    if holder is not None:
        found = store.locks.holder("move")
        raise ActionBusy(holder, found[1] if found else "")
    return MoveLock(store.locks)


class WatchLead:
    """One watcher per cutover evaluates and acts, on any host: the holder of the advisory
    lock "watch". Any number of others stand by and take it when it is freed."""

    standby = True

    def __init__(self, store: PostgresStore, *, actor: str, host: str):
        self.store, self.actor, self.host = store, actor, host
        self._held = False

    def acquire(self, now: datetime) -> None:
        holder = self.store.locks.try_take("watch", "watch", actor=self.actor, host=self.host)
        if holder is not None:
            raise WatcherRunning(holder, self.store.where)
        self._held = True

    def check(self) -> str:
        """ "leading"; "lost" (its connection ended: Postgres freed the lock, and a standby
        may hold it now); "standby" (never taken)."""
        if not self._held:
            return "standby"
        return "leading" if self.store.locks.held("watch") else "lost"

    def release(self) -> None:
        if self._held:
            self._held = False
            self.store.locks.release("watch")

    def __enter__(self) -> WatchLead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
