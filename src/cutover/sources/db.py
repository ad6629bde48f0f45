"""Run the runbook's queries on Postgres: read-only, time-limited, errors as readable values."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg

from cutover.base.errors import CutoverError
from cutover.base.redact import mask_url_passwords
from cutover.runbook import sqlfile, sqlguard
from cutover.runbook.frozen import frozen
from cutover.runbook.model import Database, Query
from cutover.runbook.problems import Problem
from cutover.sources.caps import MAX_ROWS, cap_row, cap_text
from cutover.sources.failed_run import (
    connection_lost,
    dsn_sockets,
    ended_by_server,
    needed_column,
    shortened,
    told_to_end,
)
from cutover.sources.results import Cause, QueryResult

DSN_SCHEMES = ("postgresql", "postgres")
# Shown without a password part: every output is redacted of URL passwords, and an
# example with one would read "USER:***@".
DSN_FORM = (
    "postgresql://USER@HOST:PORT/DATABASE, with :PASSWORD after USER (an IPv6 host in "
    "brackets: [::1])"
)


class DatabaseUnavailable(CutoverError):
    """The database cannot be reached or the DSN is missing; the message is safe to show."""


class QueryRefused(CutoverError):
    """The guard will not let this query near the database (sqlguard); the message says why."""


def dsn_from_env(database: Database, environ: Mapping[str, str]) -> str:
    dsn = environ.get(database.dsn_env, "").strip()
    if not dsn:
        raise DatabaseUnavailable(
            f"no database: set {database.dsn_env} to the Postgres DSN (the runbook's "
            "[database] dsn_env names this variable)"
        )
    check_dsn(dsn, database.dsn_env)
    return dsn


def check_dsn(dsn: str, env_name: str) -> None:
    """DatabaseUnavailable, in one line without the DSN, when it cannot be a Postgres URL.

    >>> try:
    ...     check_dsn("postgresql://app:s3cret@[::1:5432/x", "DB_URL")
    ... except DatabaseUnavailable as exc:
    ...     print(str(exc)[:54])
    DB_URL does not hold a Postgres URL: Invalid IPv6 URL;
    """
    why = None
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 -- a port that is not a number in 0-65535 raises here
    except ValueError as exc:
        why = redact(str(exc), dsn)
    else:
        if parts.scheme not in DSN_SCHEMES:
            why = "it must start with postgresql:// (a key=value DSN is not supported)"
    if why:
        raise DatabaseUnavailable(
            f"{env_name} does not hold a Postgres URL: {why}; write it as {DSN_FORM}"
        )


def redact(text: str, dsn: str | None = None) -> str:
    """Text with any DSN password replaced, whether it came from the DSN or a driver message.

    >>> redact("postgresql://app:s3cret@db:5432/x failed")
    'postgresql://app:***@db:5432/x failed'
    >>> redact("auth failed for s3cret", "postgresql://app:s3cret@db/x")
    'auth failed for ***'
    >>> redact("s3cret, and a malformed IPv6 host", "postgresql://app:s3cret@[::1/x")
    '***, and a malformed IPv6 host'
    """
    password = _password_of(dsn) if dsn else None
    if password:
        text = text.replace(password, "***")
    return mask_url_passwords(text)


def _password_of(dsn: str) -> str | None:
    try:
        return urlsplit(dsn).password
    except ValueError:  # not a URL Python can split: read user:password@ by hand
        userinfo = dsn.partition("://")[2].rpartition("@")[0]
        return userinfo.partition(":")[2] or None


# How long past the statement timeout the driver waits for the server's answer before it
# gives up on the connection: the server ends a slow query itself at the statement timeout,
# so no answer by then means the network or the server has gone silent.
SILENCE_GRACE_S = 5


def explain(
    exc: BaseException, timeout_s: float, dsn: str | None = None, *, waited_s: float | None = None
) -> str:
    """One operator-readable line for a failed query, with the fix where there is one.
    `waited_s`: how long a bare timeout waited (the driver's wait for an answer, unless
    said otherwise)."""
    if isinstance(exc, asyncpg.UndefinedColumnError):
        match = re.search(r'column "?([\w.]+)"? does not exist', str(exc))
        if match:
            return f"needs column {match.group(1).split('.')[-1]} (the database has no such column)"
    if isinstance(exc, asyncpg.UndefinedTableError):
        match = re.search(r'relation "?([\w.]+)"? does not exist', str(exc))
        if match:
            return f"needs table {match.group(1)} (the database has no such table)"
    if isinstance(exc, asyncpg.QueryCanceledError):
        return f"timed out after {timeout_s:g}s (the runbook's statement_timeout)"
    if isinstance(
        exc, asyncpg.InvalidSQLStatementNameError | asyncpg.DuplicatePreparedStatementError
    ):
        return (
            f"{exc}; this looks like a transaction pooler (Supabase port 6543, PgBouncer): "
            'set pooler = "transaction" under [database]'
        )
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        # A second console or a teammate's commands on the same read-only role, mid-incident
        # (or the whole server's slots taken): the fix is the operator's to make.
        limit = "the role's CONNECTION LIMIT" if "for role" in str(exc) else "max_connections"
        return redact(
            f"the database takes no more connections: {exc} (a console holds two at most, "
            f"a command one or two: close one, or raise {limit})",
            dsn,
        )
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError):
        # asyncpg says "connection was closed in the middle of operation", around the
        # server's words when there were any: those are the news.
        if told_to_end(exc):
            return redact(f"database unreachable: {exc.__cause__}", dsn)
        return "database unreachable: the connection broke mid-query; the server said nothing"
    if isinstance(
        exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidCatalogNameError
    ):
        # Refused at the door (a password rotated mid-cutover, a role or database renamed):
        # no wait cures it. The server's words name the role or database, never a password.
        why = f"{exc} (check the role, password and database name in the database URL)"
        return redact(f"the database refused the login: {why}", dsn)
    if isinstance(exc, asyncpg.PostgresError):
        return redact(f"{type(exc).__name__}: {exc}", dsn)
    socket = dsn_sockets(dsn)
    if socket and isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        # "[Errno 2] No such file or directory" says nothing of a database being down.
        return f"database unreachable: no server listening at {socket} (is Postgres running?)"
    if isinstance(exc, TimeoutError) and not str(exc):
        # The driver's own wait ran out, with no word from the server: the text of such a
        # timeout is empty, and "database unreachable: " alone told the operator nothing.
        waited = timeout_s + SILENCE_GRACE_S if waited_s is None else waited_s
        return (
            f"database unreachable: no answer in {waited:g} s "
            "(the network or the server went silent)"
        )
    if isinstance(exc, OSError | asyncio.TimeoutError | asyncpg.InterfaceError):
        return redact(f"database unreachable: {str(exc) or type(exc).__name__}", dsn)
    if isinstance(exc, asyncpg.OutdatedSchemaCacheError):
        # A type the query returns was altered since this connection first read it (a
        # migration while the cutover runs): the next refresh reads it afresh.
        return redact(
            f"the database's schema changed under this query ({exc}); its next run reads it afresh",
            dsn,
        )
    if isinstance(exc, asyncpg.InternalClientError):
        return redact(
            f"database unreachable: the connection broke off mid-conversation ({exc})", dsn
        )
    return redact(f"{type(exc).__name__}: {exc}", dsn)


# How the server ended a run's connection (QueryRunner._run_once).
BEFORE_IT_WAS_SENT = "before it was sent"
WHILE_IT_RAN = "while it ran"

# Connections a runner opens at most. Two run a check's queries side by side (measured on 2
# cores: 6 connections were no faster than 2), and the console and one command together stay
# within the read-only role's CONNECTION LIMIT 4 the README advises.
MAX_CONNECTIONS = 2


def pool_size(query_count: int) -> int:
    """Connections for this much SQL at once: one each, up to MAX_CONNECTIONS.

    >>> pool_size(1), pool_size(6), pool_size(0)
    (1, 2, 1)
    """
    return max(1, min(MAX_CONNECTIONS, query_count))


class QueryRunner:
    """A small pool, its connections opened together up front (a query never waits for one
    to be set up); each query in its own read-only transaction with a statement timeout."""

    def __init__(self, database: Database, dsn: str, *, size: int = 2, connect_timeout: float = 5):
        self.database = database
        self.dsn = dsn
        self.size = max(1, size)
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        # The guard's verdict per query text, asked of this database once (sqlguard); another
        # runner on this database may take them over (sources/first_answers).
        self.judged: dict[str, sqlguard.Refusal | None] = {}
        # Texts a judge_all is asking about right now: a run waits for that answer rather
        # than ask the same again on a connection of its own.
        self._judging: dict[str, asyncio.Future[None]] = {}

    async def connect(self) -> None:
        """Open the pool; raise DatabaseUnavailable with a safe message when it cannot."""
        async with self._lock:
            if self._pool is not None:
                return
            check_dsn(self.dsn, self.database.dsn_env)
            # A transaction pooler hands each transaction to any server connection, so
            # named prepared statements vanish between them: asyncpg must not cache any.
            cache = 0 if self.database.pooler == "transaction" else 100
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.size,
                    max_size=self.size,
                    timeout=self.connect_timeout,
                    statement_cache_size=cache,
                    command_timeout=self.database.statement_timeout_s + SILENCE_GRACE_S,
                    server_settings={"application_name": "cutover"},
                    reset=_nothing_to_reset,
                )
            except Exception as exc:  # every driver failure becomes one readable line
                raise DatabaseUnavailable(
                    explain(
                        exc,
                        self.database.statement_timeout_s,
                        self.dsn,
                        waited_s=self.connect_timeout,
                    )
                ) from None

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    async def run(self, query: Query, *args: object, max_rows: int = MAX_ROWS) -> QueryResult:
        """Run one query. Never raises for database trouble: the result carries the error.

        A query may take parameters ($1…); those not given are NULL, so a query can offer a
        default (`coalesce($1, now() - interval '15 minutes')`) that a caller overrides.

        At most `max_rows` rows come back, each cell capped (sources.caps): the rows are read
        through a server-side cursor, so a million-row result never crosses the wire whole,
        and `truncated` says there were more.

        `duration_s` is the time the query took once it had a connection: a query queued
        behind others is not slow itself.

        A run whose connection the server ended before the query was sent (an idle session
        timeout, a restart, a DBA's pg_terminate_backend of an idle connection) is asked
        once more on a fresh one: that says whether the server is gone or only that
        connection was, which one run could not tell. Never a query that was running: the
        server (or a DBA, killing a heavy query) may have ended it for what it was doing: if
        the server then takes a new connection, that run failed (its words, FAILED), and the
        database is not said to be unreachable. Not after a timeout either: a silent host
        would be found out a connect timeout later."""
        result, ended = await self._run_once(query, args, max_rows, last_try=False)
        if ended == BEFORE_IT_WAS_SENT:
            result, ended = await self._run_once(query, args, max_rows, last_try=True)
        if ended == WHILE_IT_RAN and await self._takes_connections():
            # One backend ended (a DBA's pg_terminate_backend of a heavy query): this run
            # failed, the database did not go away. A server shutting down refuses.
            # asyncpg calls the ended connection an interface error: "database unreachable"
            # is what explain() says of those, and here it is not so.
            words = (result.error or "").removeprefix("database unreachable: ")
            error = (
                f"ended by the database while it ran ({words}); the database still takes "
                "connections: only this run failed, the next refresh runs it again"
            )
            result = dataclasses.replace(result, error=error, cause=Cause.FAILED)
        return result

    async def _takes_connections(self) -> bool:
        """Whether the server accepts a connection now (the pool, opened for the next run)."""
        try:
            await self.connect()
        except DatabaseUnavailable:
            return False
        return True

    async def _run_once(
        self, query: Query, args: tuple[object, ...], max_rows: int, *, last_try: bool
    ) -> tuple[QueryResult, str | None]:
        """One run; and whether the server ended its connection, BEFORE_IT_WAS_SENT (worth
        one more try) or WHILE_IT_RAN (worth asking whether it takes new connections)."""
        started = time.monotonic()
        ran_at = datetime.now(UTC)
        timeout = self.database.statement_timeout_s
        sent = False  # the query itself has gone to the server
        try:
            await self._judged_elsewhere(query.sql)
            if self.judged.get(query.sql) is not None:
                return _refused(query, self.judged[query.sql], ran_at, started), None
            await self.connect()
            assert self._pool is not None
            async with self._pool.acquire() as conn, read_only(conn, timeout):
                started = time.monotonic()
                ran_at = datetime.now(UTC)
                refusal = await self._judge(conn, query)
                if refusal is not None:  # never sent to the server
                    return _refused(query, refusal, ran_at, started), None
                try:
                    sent = True
                    statement = await conn.prepare(query.sql)
                    wanted = len(statement.get_parameters())
                    rows, truncated = await _fetch_capped(
                        statement, (list(args) + [None] * wanted)[:wanted], max_rows
                    )
                except asyncpg.OutdatedSchemaCacheError:
                    # Inside a transaction asyncpg keeps the stale types: every later run
                    # would fail the same way. Dropped here, the next run reads them afresh.
                    await conn.reload_schema_state()
                    raise
                columns = tuple(attr.name for attr in statement.get_attributes())
        except DatabaseUnavailable as exc:
            unreachable = QueryResult(
                query.id,
                ran_at=ran_at,
                error=str(exc),
                cause=Cause.UNREACHABLE,
                duration_s=time.monotonic() - started,
            )
            return unreachable, None
        except Exception as exc:  # a query's failure is data for its panel, not a crash
            # Ended by the server: that connection is closed already (read_only), and the
            # pool opens another for the next try. Otherwise, or on the last try, the whole
            # pool goes: the next run reconnects.
            ended = not last_try and not sent and ended_by_server(exc)
            if connection_lost(exc) and not ended:
                await self.aclose()
            lacking = needed_column(exc, query)
            failed = QueryResult(
                query.id,
                ran_at=ran_at,
                error=lacking or cap_text(explain(shortened(exc), timeout, self.dsn)),
                cause=Cause.LACKING if lacking else cause_of(exc),
                duration_s=time.monotonic() - started,
            )
            if ended:
                return failed, BEFORE_IT_WAS_SENT
            return failed, WHILE_IT_RAN if sent and told_to_end(exc) else None
        answered = QueryResult(
            query.id,
            columns=columns,
            rows=rows,
            ran_at=ran_at,
            duration_s=time.monotonic() - started,
            truncated=truncated,
        )
        return answered, None

    async def _judged_elsewhere(self, text: str) -> None:
        """Wait for a judge_all that is asking about this text (before taking a connection:
        waiting while holding one could leave judge_all none to ask on)."""
        asking = self._judging.get(text)
        if asking is not None:
            await asyncio.shield(asking)

    async def _judge(self, conn: asyncpg.Connection, query: Query) -> sqlguard.Refusal | None:
        if query.sql not in self.judged:
            self.judged[query.sql] = await sqlguard.check_on(conn, query.sql)
        return self.judged[query.sql]

    async def explain(self, query: Query, *args: object) -> list[str]:
        """Postgres's plan for the query and its estimated cost: EXPLAIN without ANALYZE, so
        nothing runs; in a read-only transaction with the statement timeout, and never for
        a query the guard refuses (QueryRefused). Parameters not given are NULL."""
        timeout = self.database.statement_timeout_s
        await self.connect()
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn, read_only(conn, timeout):
                refusal = await self._judge(conn, query)
                if refusal is not None:
                    raise QueryRefused(refusal.reason)
                statement = await conn.prepare(f"EXPLAIN {query.sql}")
                wanted = len(statement.get_parameters())
                rows = await statement.fetch(*(list(args) + [None] * wanted)[:wanted])
        except CutoverError:
            raise
        except Exception as exc:  # in the words a failed run uses, the DSN's secrets masked
            raise CutoverError(explain(exc, timeout, self.dsn)) from None
        return [str(r[0]) for r in rows]

    async def judge_all(self, queries: Iterable[Query]) -> None:
        """Judge every query not judged yet in one round trip (each would otherwise ask the
        database on its first run, while it holds a connection). Never raises: a query left
        unjudged is judged when it runs, and says there what went wrong."""
        texts = list(
            dict.fromkeys(
                q.sql
                for q in queries
                if q.kind == "sql" and q.sql not in self.judged and q.sql not in self._judging
            )
        )
        if not texts:
            return
        asking: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._judging.update(dict.fromkeys(texts, asking))
        try:
            await self.connect()
            assert self._pool is not None
            timeout = self.database.statement_timeout_s
            async with self._pool.acquire() as conn, read_only(conn, timeout):
                judged = await sqlguard.check_all_on(conn, texts)
            self.judged.update(judged)
        except Exception:  # the query's own run reports it, with its words
            return
        finally:
            for text in texts:
                self._judging.pop(text, None)
            asking.set_result(None)

    async def prepare(self, query: Query, shown_file: str) -> Prepared:
        """Judge what the query calls, then ask Postgres to plan it without running it.

        The problem (if any) is placed at its .sql position; the columns are what the query
        would return, for checking what the runbook reads of it (None when refused)."""
        columns: tuple[str, ...] | None = None
        try:
            await self.connect()
            assert self._pool is not None
            timeout = self.database.statement_timeout_s
            async with self._pool.acquire() as conn, read_only(conn, timeout):
                # Judged before Postgres parses it: parsing reads a literal with its type's
                # input, which for an array or a row of a domain runs the domain's CHECK.
                refusal = await self._judge(conn, query)
                if refusal is None:
                    statement = await conn.prepare(query.sql)
                    columns = tuple(attr.name for attr in statement.get_attributes())
        except DatabaseUnavailable:
            raise
        except asyncpg.PostgresError as exc:
            line, col = query.sql_line, query.sql_col
            position = getattr(exc, "position", None)
            if position:
                line, col = statement_of(query).file_position(int(position))
            message = explain(exc, self.database.statement_timeout_s, self.dsn)
            return Prepared(
                Problem(shown_file, line, col, f"query {query.id!r} fails on Postgres: {message}"),
                needed=needed_column(exc, query),
            )
        except Exception as exc:  # connection dropped mid-way and the like
            raise DatabaseUnavailable(
                explain(exc, self.database.statement_timeout_s, self.dsn)
            ) from None
        if refusal is not None:
            line, col = statement_of(query).position_of(refusal.offset)
            return Prepared(
                Problem(shown_file, line, col, f"query {query.id!r} may not run: {refusal.reason}"),
                columns,
            )
        return Prepared(None, columns)


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset when a connection comes back: nothing more. asyncpg's own (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL) was one more round trip after every query;
    `read_only` sends it with the transaction's end instead. An open transaction is still
    rolled back by the pool (asyncpg does that before calling this)."""


@contextlib.asynccontextmanager
async def read_only(conn: asyncpg.Connection, timeout_s: float) -> AsyncIterator[None]:
    """A read-only transaction with the statement timeout, opened in one round trip: BEGIN
    and SET LOCAL go as one simple-protocol message (asyncpg's transaction() and a SET were
    two). Behind a transaction pooler both hold, as they are one transaction's.

    Ended by COMMIT, or ROLLBACK when the block raised (a read-only transaction has nothing
    to keep either way), with the connection's reset in the same message: whatever session
    state a query the guard let through by mistake left (a set_config, an advisory lock) is
    gone before the next query, as the pool's reset did a round trip later."""
    ms = max(1, int(timeout_s * 1000))
    try:
        await conn.execute(f"BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}")
    except BaseException:  # cancelled or lost while opening: whether it is open is unknown
        _terminate(conn)
        raise
    try:
        yield
    except BaseException:
        if _in_transaction(conn):
            try:
                await conn.execute("ROLLBACK;\n" + conn.get_reset_query())
            except Exception:  # not reset: not handed to the next query either
                _terminate(conn)
            except BaseException:  # cancelled meanwhile: the same, and the cancel goes on
                _terminate(conn)
                raise
        raise
    try:
        await conn.execute("COMMIT;\n" + conn.get_reset_query())
    except BaseException:  # cancelled or lost half-way: neither ended nor reset for sure
        _terminate(conn)
        raise


# A pooled connection the server closed is cleaned up at once, and its proxy detached: any
# call on it then raises "connection has been released back to the pool", which, raised in
# read_only's handlers, took the place of the error that said what happened (the server's
# FATAL, a lost connection).


def _in_transaction(conn: asyncpg.Connection) -> bool:
    try:
        return not conn.is_closed() and conn.is_in_transaction()
    except asyncpg.InterfaceError:  # detached: closed already
        return False


def _terminate(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(asyncpg.InterfaceError):  # detached: closed already
        conn.terminate()


@frozen
class Prepared:
    """What preparing a query found: a problem at its .sql position, and its result columns."""

    problem: Problem | None
    columns: tuple[str, ...] | None = None  # None: Postgres could not prepare it
    # The problem is only a column the query `needs` and this database lacks: a warning.
    needed: str | None = None


def statement_of(query: Query) -> sqlfile.Statement:
    """The query's statement as the loader read it, for mapping positions into its file."""
    return sqlfile.Statement(
        query.statement or 1, query.sql, None, "", query.sql_line, query.sql_col
    )


def _refused(
    query: Query, refusal: sqlguard.Refusal, ran_at: datetime, started: float
) -> QueryResult:
    line, col = statement_of(query).position_of(refusal.offset)
    return QueryResult(
        query.id,
        ran_at=ran_at,
        error=f"refused, not sent to the database ({query.file.name}:{line}:{col}): "
        f"{refusal.reason}",
        cause=Cause.REFUSED,
        duration_s=time.monotonic() - started,
    )


async def _fetch_capped(
    statement: asyncpg.prepared_stmt.PreparedStatement, args: list, max_rows: int
) -> tuple[tuple[tuple, ...], bool]:
    """The first `max_rows` rows, cells capped, and whether there were more. One row past
    the cap is fetched to know that, never the rest: counting them would make the server
    run the whole query on every refresh."""
    cursor = await statement.cursor(*args)
    fetched = await cursor.fetch(max_rows + 1)
    rows = tuple(cap_row(r) for r in fetched[:max_rows])
    return rows, len(fetched) > max_rows


def cause_of(exc: BaseException) -> Cause:
    """The typed cause of a failed run, for behaviour (the words are for people)."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return Cause.TIMEOUT
    if isinstance(exc, DatabaseUnavailable) or connection_lost(exc):
        return Cause.UNREACHABLE
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Cause.UNREACHABLE
    return Cause.FAILED
