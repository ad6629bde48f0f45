"""The guard asks the database what a query's calls reach once per text: a run that starts
while judge_all is asking about its text waits for that answer, instead of sending the same
catalog query on a connection of its own (the console's first screen: nine first runs, each
one round trip more, on two connections)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from tests.tui.pgproxy import PgProxy

from cutover.runbook.model import Database, Query
from cutover.runbook.sqlguard import RESOLVE_SQL
from cutover.sources.db import QueryRunner

TEXTS = {
    "upper": "SELECT upper('a') AS u",
    "lower": "SELECT lower('A') AS l",
    "length": "SELECT length('abc') AS n",
    "now": "SELECT now() - interval '1 hour' AS t",
}


async def test_runs_started_beside_judge_all_wait_for_its_answer(
    pg_server: str, empty_dsn: str
) -> None:
    proxy = PgProxy(pg_server)
    await proxy.open()
    queries = [Query(i, i, Path(f"{i}.sql"), None, 30, sql=sql) for i, sql in TEXTS.items()]
    runner = QueryRunner(Database(), proxy.dsn(urlsplit(empty_dsn).path.lstrip("/")), size=2)
    try:
        await runner.connect()
        results = await asyncio.gather(runner.judge_all(queries), *map(runner.run, queries))
    finally:
        await runner.aclose()
        await proxy.shut()
    assert [r.error for r in results[1:]] == [None] * len(TEXTS)
    marker = RESOLVE_SQL.strip().splitlines()[0].encode()
    assert bytes(proxy.sent).count(marker) == 1
