"""A server that ends a connection tells it so (FATAL: a restart, pg_terminate_backend, an
idle session timeout) and closes it. Two ways this read wrong:

- When the FATAL reached an idle connection just before the next query was sent, asyncpg's
  protocol was still waiting it out, and the query failed inside the driver
  (InternalClientError: "cannot switch to state 16; another operation (2) is in progress").
  That read as the query's own failure: a gate said WAIT "query failed", gate by gate, where
  the watcher says one database outage (CI's watcher test, at a restart).
- A connection ended while the server stays up (a DBA's pg_terminate_backend) read as the
  database being unreachable: the console showed DB ✗ and the watcher said (and notified)
  an outage and its end a second later.

One run cannot tell a connection ended from a server gone: the runner asks once more on a
fresh connection, which says which it was; but only when the query had not been sent yet.
A query ended while it ran is not sent again: a new connection, taken or refused, says
whether that run failed or the database went away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from tests.tui.pgproxy import PgProxy

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner, explain
from cutover.sources.results import Cause


def query(sql: str) -> Query:
    return Query("q", "q", Path("q.sql"), None, 30, sql=sql)


@contextlib.asynccontextmanager
async def told_to_end(pg_server: str, dsn: str) -> AsyncIterator[tuple[PgProxy, QueryRunner]]:
    """A runner through a loopback door whose one connection, having answered, has just
    been told to end (and taken that in while idle), its socket still open."""
    proxy = PgProxy(pg_server)
    await proxy.open()
    database = urlsplit(dsn).path.lstrip("/")
    runner = QueryRunner(Database(statement_timeout_s=10), proxy.dsn(database), size=1)
    try:
        assert (await runner.run(query("SELECT 1 AS one"))).error is None
        proxy.say_fatal()
        await asyncio.sleep(0.3)  # taken in while idle, before the next query is sent
        yield proxy, runner
    finally:
        await runner.aclose()
        await proxy.shut()


async def test_a_connection_told_to_end_while_the_server_stays_is_asked_again_and_answers(
    pg_server: str, empty_dsn: str
) -> None:
    async with told_to_end(pg_server, empty_dsn) as (_, runner):
        told = await runner.run(query("SELECT 2 AS two"))
    assert told.error is None, (told.cause, told.error)
    assert told.rows == ((2,),)


async def test_a_connection_told_to_end_by_a_server_going_away_is_unreachable_then_reconnects(
    pg_server: str, empty_dsn: str
) -> None:
    async with told_to_end(pg_server, empty_dsn) as (proxy, runner):
        proxy.refuse_new()  # going away: no new connection either
        told = await runner.run(query("SELECT 2 AS two"))
        assert told.cause is Cause.UNREACHABLE, (told.cause, told.error)
        assert "InternalClientError" not in (told.error or "")
        await proxy.open()  # back, on the same port
        again = await runner.run(query("SELECT 3 AS three"))
    assert again.error is None, again.error
    assert again.rows == ((3,),)


async def test_a_query_a_dba_terminates_while_it_runs_fails_alone_and_is_not_sent_again(
    pg_server: str, empty_dsn: str
) -> None:
    # A DBA who kills a heavy validation query on production means it: it is not sent
    # again at once. The run says what the server said; the next refresh runs as usual.
    proxy = PgProxy(pg_server)
    await proxy.open()
    # Nothing prepared and kept (as behind a transaction pooler): every time the query is
    # sent, its text crosses the wire, and the door counts it.
    database = Database(statement_timeout_s=10, pooler="transaction")
    runner = QueryRunner(database, proxy.dsn(urlsplit(empty_dsn).path.lstrip("/")), size=1)
    slow = query("SELECT pg_sleep(1.0) IS NULL AS slept_for_the_dba, 7 AS n")
    admin = await asyncpg.connect(empty_dsn)
    try:
        running = asyncio.ensure_future(runner.run(slow))
        ended = 0
        for _ in range(200):  # the run's backend, once it is in pg_sleep
            await asyncio.sleep(0.05)
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'cutover' AND query LIKE '%slept_for_the_dba%' "
                "AND state = 'active'"
            )
            if ended:
                break
        assert ended == 1
        killed = await running
        # In the server's words, without the driver's around them ("ConnectionDoesNotExist
        # Error: connection was closed in the middle of operation: …").
        assert (killed.error or "").startswith(
            "ended by the database while it ran (terminating connection due to administrator "
            "command); the database still takes connections"
        ), killed.error
        # The server took a new connection: that run failed, the database is not down.
        assert killed.cause is Cause.FAILED, killed.error
        assert "only this run failed" in (killed.error or "")
        assert "unreachable" not in (killed.error or ""), killed.error
        killed_sent = bytes(proxy.sent).count(b"slept_for_the_dba")
        again = await runner.run(slow)
        assert again.error is None, again.error
        assert again.rows == ((False, 7),)
        # The killed run sent its text as often as one whole run does: it was not sent again.
        assert killed_sent == bytes(proxy.sent).count(b"slept_for_the_dba") - killed_sent
    finally:
        await runner.aclose()
        await admin.close()
        await proxy.shut()


@pytest.mark.parametrize(
    ("how", "said"),
    [
        # A server shutting down: it tells every connection it is ending, takes none new.
        ("go_away", "database unreachable: terminating connection due to administrator command"),
        # A network cut, a proxy restarting: the socket closes with no word from the server.
        ("shut", "database unreachable: the connection broke mid-query; the server said nothing"),
    ],
)
async def test_a_query_running_when_the_database_goes_is_unreachable_in_words(
    pg_server: str, empty_dsn: str, how: str, said: str
) -> None:
    # Both once read the driver's class name and "connection was closed in the middle of
    # operation", an outage without the word "unreachable".
    proxy = PgProxy(pg_server)
    await proxy.open()
    database = urlsplit(empty_dsn).path.lstrip("/")
    runner = QueryRunner(Database(statement_timeout_s=10), proxy.dsn(database), size=1)
    try:
        running = asyncio.ensure_future(runner.run(query("SELECT pg_sleep(2) IS NULL AS s")))
        await asyncio.sleep(0.5)  # sent, and sleeping on the server
        if how == "go_away":
            proxy.go_away()
        else:
            await proxy.shut()
        gone = await running
    finally:
        await runner.aclose()
        await proxy.shut()
    assert gone.error == said
    assert gone.cause is Cause.UNREACHABLE, gone.error


async def test_a_role_at_its_connection_limit_says_so_and_what_to_do(
    pg_server: str, empty_dsn: str
) -> None:
    # The README's role has CONNECTION LIMIT 4: a second console, or a teammate's commands,
    # can use them up mid-incident. The operator reads that, and the fix; it read
    # "TooManyConnectionsError: too many connections for role …".
    admin = await asyncpg.connect(empty_dsn)
    await admin.execute(
        "DROP ROLE IF EXISTS at_limit; CREATE ROLE at_limit LOGIN CONNECTION LIMIT 1"
    )
    dsn = empty_dsn.replace("postgres:@", "at_limit:@", 1)
    assert dsn != empty_dsn
    taken = await asyncpg.connect(dsn)  # the one connection the role may have
    runner = QueryRunner(Database(statement_timeout_s=10), dsn, size=2)
    try:
        refused = await runner.run(query("SELECT 1 AS one"))
    finally:
        await runner.aclose()
        await taken.close()
        await admin.execute("DROP ROLE at_limit")
        await admin.close()
    assert refused.error == (
        'the database takes no more connections: too many connections for role "at_limit" '
        "(a console holds two at most, a command one or two: close one, or raise the role's "
        "CONNECTION LIMIT)"
    ), refused.error
    # Down for this console until a connection frees: it keeps trying, as for any outage.
    assert refused.cause is Cause.UNREACHABLE


def test_a_server_out_of_connection_slots_points_at_its_limit_not_the_roles() -> None:
    # The same error code when every one of the server's slots is taken: the role's
    # CONNECTION LIMIT is not the one to raise then.
    full = asyncpg.TooManyConnectionsError("sorry, too many clients already")
    assert explain(full, 10) == (
        "the database takes no more connections: sorry, too many clients already (a console "
        "holds two at most, a command one or two: close one, or raise max_connections)"
    )
