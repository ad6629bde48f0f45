"""Every query the runner sends runs in a read-only transaction under the runbook's
statement timeout, and leaves nothing of its session behind: the guard (sqlguard) is the
first line, these are the ones behind it. Each test lets a text through the guard by hand
(as a guard's mistake would) and shows Postgres itself stopping it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner
from cutover.sources.results import Cause


def query(sql: str, query_id: str = "q") -> Query:
    return Query(
        id=query_id, title=query_id, file=Path("q.sql"), statement=None, refresh_s=30, sql=sql
    )


def let_through(runner: QueryRunner, q: Query) -> None:
    """The guard's verdict, as if it had found the text one plain read."""
    runner.judged[q.sql] = None


SETTINGS = query(
    "SELECT current_setting('transaction_read_only') AS read_only, "
    "current_setting('statement_timeout') AS timeout, "
    "current_setting('application_name') AS name",
    "settings",
)


async def test_every_run_is_read_only_under_the_statement_timeout(empty_dsn):
    runner = QueryRunner(Database(statement_timeout_s=1.5), empty_dsn, size=1)
    try:
        for _ in range(2):  # the same connection again: nothing wore off
            result = await runner.run(SETTINGS)
            assert result.error is None, result.error
            assert result.rows == (("on", "1500ms", "cutover"),)
    finally:
        await runner.aclose()


async def test_a_write_the_guard_let_through_is_refused_by_the_transaction(empty_dsn):
    runner = QueryRunner(Database(), empty_dsn, size=1)
    write = query("SELECT nextval('made_here') AS n", "write")
    try:
        conn = await asyncpg.connect(empty_dsn)
        try:
            await conn.execute("CREATE SEQUENCE made_here")
        finally:
            await conn.close()
        let_through(runner, write)
        result = await runner.run(write)
        assert result.cause is Cause.FAILED
        assert "read-only transaction" in (result.error or "")
        assert (await runner.run(SETTINGS)).rows == (("on", "5s", "cutover"),)
    finally:
        await runner.aclose()


async def test_a_slow_query_is_stopped_by_the_statement_timeout(empty_dsn):
    runner = QueryRunner(Database(statement_timeout_s=0.2), empty_dsn, size=1)
    slow = query("SELECT pg_sleep(3) AS slept", "slow")
    try:
        result = await runner.run(slow)
        assert result.cause is Cause.TIMEOUT
        assert result.error == "timed out after 0.2s (the runbook's statement_timeout)"
        assert (await runner.run(SETTINGS)).rows == (("on", "200ms", "cutover"),)
    finally:
        await runner.aclose()


async def test_session_state_a_query_left_is_reset_before_the_next(empty_dsn):
    runner = QueryRunner(Database(), empty_dsn, size=1)
    sets = query(
        "SELECT set_config('application_name', 'changed', false) AS a, "
        "pg_try_advisory_lock(42) AS locked",
        "sets",
    )
    held = query("SELECT count(*) AS held FROM pg_locks WHERE locktype = 'advisory'", "held")
    try:
        let_through(runner, sets)
        assert (await runner.run(sets)).rows == (("changed", True),)
        assert (await runner.run(SETTINGS)).rows == (("on", "5s", "cutover"),)
        assert (await runner.run(held)).rows == ((0,),)
    finally:
        await runner.aclose()


async def test_a_run_cancelled_mid_query_leaves_a_connection_the_next_run_can_use(empty_dsn):
    # The console cancels fetches when it closes or a panel goes: the connection must come
    # back usable (or be replaced), never in the cancelled query's transaction.
    runner = QueryRunner(Database(statement_timeout_s=30), empty_dsn, size=1)
    complaints: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: complaints.append(context["message"]))
    slow = query("SELECT pg_sleep(20) AS slept", "slow")
    try:
        running = asyncio.create_task(runner.run(slow))
        while "pg_sleep(20)" not in await _active(empty_dsn):
            await asyncio.sleep(0.05)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert (await runner.run(SETTINGS)).rows == (("on", "30s", "cutover"),)
        assert complaints == []
    finally:
        loop.set_exception_handler(None)
        await runner.aclose()


async def _active(dsn: str) -> str:
    """The text of every query running on the server now, but this one."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return " ".join(r["query"] for r in rows)
