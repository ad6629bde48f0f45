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
fresh connection, which says which it was."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from tests.tui.pgproxy import PgProxy

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner
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


async def test_a_query_whose_backend_a_dba_terminates_is_asked_again_and_answers(
    empty_dsn: str,
) -> None:
    runner = QueryRunner(Database(statement_timeout_s=10), empty_dsn, size=1)
    slow = query("SELECT pg_sleep(1.0) IS NULL AS slept, 7 AS n")
    admin = await asyncpg.connect(empty_dsn)
    try:
        running = asyncio.ensure_future(runner.run(slow))
        ended = 0
        for _ in range(100):  # the first run's backend, once it is in pg_sleep
            await asyncio.sleep(0.05)
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'cutover' AND query LIKE '%pg_sleep%' "
                "AND state = 'active'"
            )
            if ended:
                break
        assert ended == 1
        result = await running
        assert result.error is None, (result.cause, result.error)
        assert result.rows == ((False, 7),)
    finally:
        await runner.aclose()
        await admin.close()
