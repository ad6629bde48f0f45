"""The Postgres store's connections. The record layer is synchronous (an append must be durable
before the action it records goes ahead, as a file's fsync is), the driver is asyncio: every
connection lives on one loop thread of the store's own, and a call blocks its caller until
the answer. A connection that is lost is retried in the background with backoff; meanwhile
every call fails at once (StoreUnavailable), so a console never freezes on a dead network."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from cutover.record import urgent
from cutover.record.store.base import StoreProblem, StoreUnavailable

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 10.0
PING_EVERY_S = 5.0  # a half-open connection (a host gone) is found within this and its timeout
PING_TIMEOUT_S = 3.0
RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)
# A host that vanished (no FIN, no RST) is found by the server's keepalives in ~20 s, which
# frees the session locks it held: a standby watcher takes over well within 30 s.
KEEPALIVE = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}

# What says the store is not there (as against a server that answered with an error).
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # 57: shut down, starting up, terminated
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    # The driver's side out of step: the server's FATAL reached the idle connection just
    # before the next call did. That connection cannot be used again.
    asyncpg.InternalClientError,
)

UNPARSED_DSN = "its DSN does not parse: check its host and port (the DSN is never shown)"


class _Loop:
    """The store's one event loop, on a daemon thread started on first use."""

    _lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls.loop is None or cls.thread is None or not cls.thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="cutover-store", daemon=True
                )
                thread.start()
                cls.loop, cls.thread = loop, thread
            return cls.loop


def on_loop() -> bool:
    return threading.current_thread() is _Loop.thread


def run(work: Awaitable[T], timeout: float) -> T:
    """Run `work` on the store's loop and wait for it. Never from the loop thread itself
    (a notification callback must only schedule work, or it would wait for itself)."""
    if on_loop():
        raise RuntimeError("a blocking store call from the store's own loop thread")
    future = asyncio.run_coroutine_threadsafe(work, _Loop.get())  # type: ignore[arg-type]
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise StoreUnavailable(f"no answer within {timeout:g} s") from None


def spawn(work: Awaitable[Any]) -> None:
    """Start `work` on the store's loop without waiting for it."""
    asyncio.run_coroutine_threadsafe(work, _Loop.get())  # type: ignore[arg-type]


class Link:
    """One connection, kept up. `setup` runs on each new connection (LISTEN, checks); `on_up`
    and `on_down` are called on the loop thread when it comes back or is lost."""

    def __init__(
        self,
        dsn: str,
        *,
        name: str,
        words: Callable[[str], str],
        setup: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[], None] | None = None,
        ping: bool = False,
        retry: bool = True,
        keepalive: bool = False,
        unset: str | None = None,
    ):
        self._dsn = dsn  # never in a repr or a message: `words` redacts what the driver says
        self._unset = unset  # why there is no DSN to connect with (its variable is not set)
        self.name = name
        self._words = words
        self._setup = setup
        self._on_up, self._on_down = on_up, on_down
        self._ping = ping
        self._retry_on = retry
        self._settings = {"application_name": f"cutover {name}"[:63]}
        # Set once connected, not as startup parameters: a pooler refuses those it does not
        # know (PgBouncer: "unsupported startup parameter"), before it could be named.
        self._keepalive = keepalive
        self.conn: asyncpg.Connection | None = None
        self.why: str | None = None  # why it is down, in words
        self.down_since: float | None = None  # time.time() of the loss
        self.last_ok = 0.0  # time.monotonic() of the last answer
        self.ever_up = False
        self._guard: asyncio.Lock | None = None
        self._retry: asyncio.Task | None = None
        self._pinger: asyncio.Task | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"Link({self.name!r}, up={self.conn is not None})"

    # -- calls ------------------------------------------------------------------------------

    def call(self, work: Callable[[asyncpg.Connection], Awaitable[T]], timeout: float = 0) -> T:
        timeout = timeout or CALL_TIMEOUT_S
        urgency = urgent.current()
        if urgency is None:
            return run(self.acall(work, timeout), timeout + CONNECT_TIMEOUT_S + 2)
        # A rollback's call: the store gets a few seconds, once (record/urgent.py).
        if urgency.silent() is not None:
            raise StoreUnavailable(
                "not asked again during this rollback: it did not answer moments ago"
            )
        try:
            return run(self.acall(work, timeout, within=urgency.seconds), urgency.seconds + 1)
        except StoreUnavailable as exc:
            urgency.found_silent(exc.why)
            raise

    async def acall(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        timeout: float = 0,
        *,
        within: float | None = None,
    ) -> T:
        """`work` on the connection, one at a time. `within` bounds the whole call, waiting
        for the connection and connecting included (a rollback's: record/urgent.py)."""
        timeout = timeout or CALL_TIMEOUT_S
        if self._guard is None:
            self._guard = asyncio.Lock()
        loop = asyncio.get_running_loop()
        end = None if within is None else loop.time() + within

        def left(most: float | None = None) -> float | None:
            if end is None:
                return most
            rest = max(0.0, end - loop.time())
            return rest if most is None else min(most, rest)

        try:
            await asyncio.wait_for(self._guard.acquire(), left())
        except TimeoutError:  # behind another call that has not come back either
            raise StoreUnavailable(_Unanswered(within).words) from None
        try:  # one operation at a time on a connection
            try:
                conn = await asyncio.wait_for(self._ready(), left())
            except TimeoutError:  # connecting outlasted a rollback's wait (its own is longer)
                raise self._lose(None, _Unanswered(within)) from None
            try:
                result = await asyncio.wait_for(work(conn), left(timeout))
            except StoreProblem:  # an OSError too, but the store answered: said as it is
                raise
            except TimeoutError as exc:
                raise self._lose(conn, _Unanswered(within) if within else exc) from None
            except UNREACHABLE as exc:
                raise self._lose(conn, exc) from None
            except asyncpg.PostgresError as exc:
                raise StoreProblem(self._server_words(exc)) from None
        finally:
            self._guard.release()
        self.last_ok = time.monotonic()
        return result

    async def _ready(self) -> asyncpg.Connection:
        conn = self.conn
        if conn is not None and not conn.is_closed():
            return conn
        if self._unset is not None:
            raise StoreUnavailable(self._unset)
        if self._closed:
            raise StoreUnavailable("its connection was closed")
        if self._retry is not None and not self._retry.done():
            raise StoreUnavailable(self.why or "reconnecting")
        try:
            return await self._connect()
        except StoreProblem:  # an OSError too, but the store answered: said as it is
            raise
        except UNREACHABLE as exc:
            raise self._lose(None, exc) from None
        except asyncpg.PostgresError as exc:
            # Refused at the door (no such role, a wrong password, no such database): the
            # store answered, and what to fix is in its words. Not a bug, and a rollback goes
            # ahead through it.
            raise StoreProblem(self._server_words(exc)) from None

    async def _connect(self) -> asyncpg.Connection:
        try:
            conn = await asyncio.wait_for(
                asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT_S,
                    statement_cache_size=0,  # nothing prepared survives a pooler; none needed
                    server_settings=self._settings,
                ),
                CONNECT_TIMEOUT_S + 1,
            )
        except asyncpg.InterfaceError:
            raise  # the driver's own words ("invalid DSN: ..."), unreachable as any other
        except ValueError:
            # A DSN the driver cannot even take apart (a port that is not a number, a broken
            # IPv6 address) is a store that cannot be reached, which a rollback goes ahead
            # through, not a bug. Its words are not repeated: they can quote a piece of it
            # (a password with a '/' in it reads as the port).
            raise asyncpg.InterfaceError(UNPARSED_DSN) from None
        try:
            if self._keepalive:
                await conn.execute(
                    "SELECT "
                    + ", ".join(f"set_config('{k}', '{v}', false)" for k, v in KEEPALIVE.items())
                )
            if self._setup is not None:
                await self._setup(conn)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._terminated)
        self.conn, self.why, self.down_since = conn, None, None
        self.ever_up = True
        self.last_ok = time.monotonic()
        if self._ping and (self._pinger is None or self._pinger.done()):
            self._pinger = asyncio.ensure_future(self._keep_pinging())
        if self._on_up is not None:
            # Every (re)connection: what happened before it was set up (a LISTEN) was missed.
            self._on_up()
        return conn

    # -- losing and finding it again --------------------------------------------------------

    def _lose(self, conn: asyncpg.Connection | None, exc: BaseException) -> StoreUnavailable:
        why = self._words(_plain(exc))
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
        if conn is None or conn is self.conn:
            self.conn = None
            first = self.down_since is None
            self.why = why
            if first:
                self.down_since = time.time()
                if self._on_down is not None:
                    self._on_down()
            self.keep_trying()
        return StoreUnavailable(why)

    def keep_trying(self) -> None:
        """Connect again with backoff until it works (each failure's words in `why`): for a
        first connection the store refused, which no loss set retrying."""
        if self._retry_on and not self._closed and (self._retry is None or self._retry.done()):
            self._retry = asyncio.ensure_future(self._reconnect())

    def _terminated(self, conn: asyncpg.Connection) -> None:
        if conn is self.conn and not self._closed:
            self._lose(conn, ConnectionResetError("the server closed the connection"))

    async def _reconnect(self) -> None:
        for attempt in range(10**9):
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            if self._closed:
                return
            try:
                await self._connect()
                return
            except StoreProblem as exc:  # answered, but not usable yet: keep trying, say why
                self.why = self._words(str(exc))
            except UNREACHABLE as exc:
                self.why = self._words(_plain(exc))
            except Exception as exc:  # the schema went away meanwhile: keep trying, say why
                self.why = self._words(_plain(exc))

    async def _keep_pinging(self) -> None:
        """A connection nobody uses (a console between notifications) is asked something
        every few seconds: a network that died silently shows as the store being down."""
        while not self._closed:
            await asyncio.sleep(PING_EVERY_S)
            conn = self.conn
            if conn is None or self._guard is None or self._guard.locked():
                continue
            try:
                async with self._guard:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT_S)
                self.last_ok = time.monotonic()
            except UNREACHABLE as exc:
                self._lose(conn, exc)
            except asyncpg.PostgresError:
                pass

    def fresh(self, within_s: float = PING_EVERY_S + PING_TIMEOUT_S + 1) -> bool:
        """Up, and heard from lately: what it last said (a notification's absence) holds."""
        conn = self.conn
        return (
            conn is not None
            and not conn.is_closed()
            and time.monotonic() - self.last_ok <= within_s
        )

    def close(self) -> None:
        """Let the connection go (a session lock it holds goes with it)."""
        if self._closed:
            return
        self._closed = True
        if on_loop():
            self._close_now()
            return
        with contextlib.suppress(Exception):
            run(self._aclose(), CONNECT_TIMEOUT_S)

    async def _aclose(self) -> None:
        self._close_now()

    def _close_now(self) -> None:
        for task in (self._retry, self._pinger):
            if task is not None:
                task.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.remove_termination_listener(self._terminated)
            conn.terminate()

    def _server_words(self, exc: asyncpg.PostgresError) -> str:
        return self._words(f"the state store refused: {_plain(exc)}")


class _Unanswered(TimeoutError):
    """A rollback's call that the store did not answer within its short wait."""

    def __init__(self, within: float | None):
        self.words = f"no answer within {within or 0:g} s; a rollback waits no longer"
        super().__init__(self.words)


def _plain(exc: BaseException) -> str:
    """A driver's error in one line, for the operator."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) and not text:
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused: is the server up, and the host and port right?"
    return text or name
