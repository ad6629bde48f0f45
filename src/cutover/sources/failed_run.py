"""What a failed run means (sources/db): whether its connection is gone and whether the
server ended it, a column the query needs and the database lacks, its words cut to a
screenful, and where the socket is that no server listened at."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from cutover.runbook.model import Query
from cutover.sources.caps import MAX_REASON_CHARS, cap_text


def needed_column(exc: BaseException, query: Query) -> str | None:
    """For a query run without a column it declares it `needs`: what the operator reads
    ("needs column pipeline_version; add it to see the v1/v2 split"). None otherwise: any
    other failure stays an error.

    >>> from pathlib import Path
    >>> q = Query("v1_vs_v2", "", Path("q.sql"), None, 30,
    ...           needs={"pipeline_version": "add it to see the v1/v2 split"})
    >>> needed_column(asyncpg.UndefinedColumnError('column "pipeline_version" does not exist'), q)
    'needs column pipeline_version; add it to see the v1/v2 split'
    """
    if not query.needs or not isinstance(exc, asyncpg.UndefinedColumnError):
        return None
    match = re.search(r'column "?([\w.]+)"? does not exist', str(exc))
    column = match.group(1).split(".")[-1] if match else None
    if column not in query.needs:
        return None
    return f"needs column {column}; {query.needs[column] or 'add it to run this query'}"


def shortened(exc: BaseException) -> BaseException:
    """The same error with its text cut to MAX_REASON_CHARS: Postgres quotes the value it
    could not use, which may be megabytes, and nothing downstream (redaction regexes, a
    panel, `check`) should pay for more than a screenful of it."""
    if exc.args and isinstance(exc.args[0], str) and len(exc.args[0]) > MAX_REASON_CHARS:
        exc.args = (cap_text(exc.args[0]), *exc.args[1:])
    for name in ("detail", "hint"):
        value = getattr(exc, name, None)
        if isinstance(value, str) and len(value) > MAX_REASON_CHARS:
            setattr(exc, name, cap_text(value))
    return exc


def ended_by_server(exc: BaseException) -> bool:
    """The server ended this connection, by a word (FATAL: terminated, shut down, idle too
    long) or by closing it: the server itself may be fine."""
    if isinstance(exc, asyncpg.OutdatedSchemaCacheError):
        return False
    return isinstance(
        exc,
        asyncpg.InternalClientError  # its FATAL reached the idle connection (see below)
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError
        | asyncpg.IdleSessionTimeoutError
        | asyncpg.IdleInTransactionSessionTimeoutError,
    )


def told_to_end(exc: BaseException) -> bool:
    """The server said it was ending the connection (FATAL 57P01): a DBA's
    pg_terminate_backend, or a shutdown. Only a new connection tells the two apart."""
    # asyncpg raises it for an idle connection; a running query's run gets "connection was
    # closed in the middle of operation", caused by it.
    return isinstance(exc, asyncpg.AdminShutdownError) or isinstance(
        exc.__cause__, asyncpg.AdminShutdownError
    )


def connection_lost(exc: BaseException) -> bool:
    # InternalClientError: the driver's side of the conversation is out of step, as when the
    # server's FATAL "terminating connection" reached an idle connection just before the
    # next query did. The connection cannot be used again, whatever the database's state.
    # Not its OutdatedSchemaCacheError: a type altered under a query, on a sound connection.
    return ended_by_server(exc) or isinstance(
        exc, OSError | asyncpg.InterfaceError | asyncpg.CannotConnectNowError
    )


def dsn_sockets(dsn: str | None) -> str | None:
    """Where a DSN's Unix socket(s) would be, or None when it names no socket.

    >>> dsn_sockets("postgresql://app:pw@/x?host=/run/pg&port=6000")
    '/run/pg/.s.PGSQL.6000'
    >>> dsn_sockets("postgresql://app:pw@%2Ftmp%2Fpg/x")
    '/tmp/pg/.s.PGSQL.5432'
    >>> dsn_sockets("postgresql://app:pw@db:5432/x") is None
    True
    """
    if not dsn:
        return None
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host_port = parts.netloc.rpartition("@")[2]
        host = query.get("host", [""])[-1] or unquote(host_port.partition(":")[0])
        port = query.get("port", [""])[-1] or str(parts.port or 5432)
    except ValueError:
        return None
    sockets = [f"{h.rstrip('/')}/.s.PGSQL.{port}" for h in host.split(",") if h.startswith("/")]
    return " or ".join(sockets) or None
