"""A server that is going away tells each idle connection so (FATAL 57P01) a moment before it
closes the socket. A query started in that moment found asyncpg's protocol still waiting out
the error, and its failure ("cannot switch to state 16; another operation (2) is in
progress", InternalClientError) read as the query's own: a gate said WAIT "query failed"
gate by gate, where the watcher says one database outage. It is the connection that is
gone: the result says unreachable, and the next run reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from tests.tui.pgproxy import PgProxy

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner
from cutover.sources.results import Cause


def query(sql: str) -> Query:
    return Query("q", "q", Path("q.sql"), None, 30, sql=sql)


async def test_a_query_on_a_connection_told_to_end_is_unreachable_and_the_next_reconnects(
    pg_server: str, empty_dsn: str
) -> None:
    proxy = PgProxy(pg_server)
    await proxy.open()
    database = urlsplit(empty_dsn).path.lstrip("/")
    runner = QueryRunner(
        Database(dsn_env="TEST_DSN", statement_timeout_s=10), proxy.dsn(database), size=1
    )
    try:
        first = await runner.run(query("SELECT 1 AS one"))
        assert first.error is None, first.error
        proxy.say_fatal()
        await asyncio.sleep(0.3)  # taken in while idle, before the next query is sent
        told = await runner.run(query("SELECT 2 AS two"))
        assert told.cause is Cause.UNREACHABLE, (told.cause, told.error)
        again = await runner.run(query("SELECT 3 AS three"))
        assert again.error is None, again.error
        assert again.rows == ((3,),)
    finally:
        await runner.aclose()
        await proxy.shut()
