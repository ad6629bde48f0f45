"""A migration while the cutover runs alters a type a validation query returns (a composite
type gains an attribute). asyncpg, inside the read-only transaction every run uses, kept the
types it had read and failed with OutdatedSchemaCacheError, on that run and on every run
after it until the console was restarted: a panel failing for good over a change the
database had already made. The run that finds the change fails, saying so (the connection is
sound: it is not an outage), and the next run reads the altered type afresh."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner
from cutover.sources.results import Cause


async def test_a_type_altered_under_a_query_fails_one_run_and_the_next_reads_it_afresh(
    empty_dsn: str,
) -> None:
    conn = await asyncpg.connect(empty_dsn)
    await conn.execute(
        "CREATE TYPE pair AS (a int); CREATE TABLE held (x pair); INSERT INTO held VALUES (ROW(1))"
    )
    query = Query("pairs", "pairs", Path("pairs.sql"), None, 30, sql="SELECT x FROM held")
    runner = QueryRunner(Database(), empty_dsn, size=1)
    try:
        before = await runner.run(query)
        assert before.error is None and before.rows[0][0]["a"] == 1
        await conn.execute("ALTER TYPE pair ADD ATTRIBUTE b text")
        found = await runner.run(query)
        assert found.cause is Cause.FAILED, (found.cause, found.error)
        assert "schema changed" in (found.error or "")
        after = await runner.run(query)
        assert after.error is None, after.error
        assert dict(after.rows[0][0]) == {"a": 1, "b": None}
    finally:
        await runner.aclose()
        await conn.close()
