"""Queries that would write or act beyond their read-only transaction never run: not through
dblink, not through a wrapper function, not by a lock, a setting or a notification that
outlives the transaction. Each runs `cutover check` as the operator would, on a real
Postgres, and counts what the query would have harmed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner
from cutover.sources.results import Cause

Ran = subprocess.CompletedProcess

RUNBOOK = """\
version = 1
title = "harm"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0

[[triggers]]
id = "errors"
query = "q"
column = "n"
op = ">"
value = 10
"""


@pytest.fixture
async def victims_dsn(empty_dsn: str) -> str:
    """A database with three rows to lose, dblink, and functions that hide what they do."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'"
        )
        assert available == 1, "the embedded Postgres ships dblink; this test relies on it"
        await conn.execute(
            f"""
            CREATE EXTENSION dblink;
            CREATE TABLE victims (id int);
            INSERT INTO victims VALUES (1), (2), (3);
            -- plpgsql functions are VOLATILE unless declared otherwise.
            CREATE FUNCTION sweep() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM dblink_exec('{empty_dsn}', 'DELETE FROM victims');
              RETURN 1;
            END $$;
            CREATE FUNCTION ping() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_notify('cutover_fault', 'from a query');
              RETURN 1;
            END $$;
            CREATE SCHEMA ops;
            CREATE FUNCTION ops.tidy() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM dblink_exec('{empty_dsn}', 'DELETE FROM victims');
              RETURN 1;
            END $$;
            CREATE FUNCTION same(a int, b int) RETURNS bool LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM dblink_exec('{empty_dsn}', 'DELETE FROM victims');
              RETURN a = b;
            END $$;
            CREATE OPERATOR === (leftarg = int, rightarg = int, function = same);
            """
        )
    finally:
        await conn.close()
    return empty_dsn


async def victims(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM victims")
    finally:
        await conn.close()


def check(tmp_path: Path, sql: str, dsn: str, command: str = "check") -> Ran:
    (tmp_path / "q.sql").write_text(f"-- Errors\n{sql};\n", encoding="utf-8")
    (tmp_path / "runbook.toml").write_text(RUNBOOK, encoding="utf-8")
    (tmp_path / "flag").write_text("0\n", encoding="utf-8")
    env = {**os.environ, "CUTOVER_DATABASE_URL": dsn, "USER": "ana"}
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(tmp_path / "runbook.toml"), command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


async def test_check_cannot_delete_rows_through_dblink(tmp_path, victims_dsn):
    sql = f"SELECT dblink_exec('{victims_dsn}', 'DELETE FROM victims') AS n"
    done = check(tmp_path, sql, victims_dsn)
    assert await victims(victims_dsn) == 3
    assert done.returncode == 2, done.stdout + done.stderr
    refused = "a query must be one read-only statement: calls dblink_exec()"
    assert f"{tmp_path}/q.sql:2:8: {refused}" in done.stderr


async def test_check_cannot_delete_rows_through_a_wrapper_function(tmp_path, victims_dsn):
    done = check(tmp_path, "SELECT sweep() AS n", victims_dsn)
    assert await victims(victims_dsn) == 3
    # The trigger cannot be evaluated: unknown, never quiet, and check waits (exit 3).
    assert done.returncode == 3, done.stdout + done.stderr
    assert "? UNKNOWN  errors" in done.stdout
    assert "refused, not sent to the database (q.sql:2:8)" in done.stdout
    assert "public.sweep()" in done.stdout and "VOLATILE" in done.stdout


async def test_validate_names_the_volatile_function_at_its_sql_position(tmp_path, victims_dsn):
    done = check(tmp_path, "SELECT 1 AS n,\n       sweep() AS m", victims_dsn, "validate")
    assert await victims(victims_dsn) == 3
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{tmp_path}/q.sql:3:8: query 'q' may not run: calls public.sweep()" in done.stderr


async def test_a_function_found_on_the_search_path_is_judged_as_postgres_finds_it(
    tmp_path, victims_dsn
):
    conn = await asyncpg.connect(victims_dsn)
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{database}" SET search_path = ops, public')
    finally:
        await conn.close()
    done = check(tmp_path, "SELECT tidy() AS n", victims_dsn)
    assert await victims(victims_dsn) == 3
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ops.tidy()" in done.stdout


async def test_a_schema_qualified_call_is_judged_in_its_schema(tmp_path, victims_dsn):
    done = check(tmp_path, "SELECT ops.tidy() AS n", victims_dsn)
    assert await victims(victims_dsn) == 3
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ops.tidy()" in done.stdout


async def test_an_operator_backed_by_a_volatile_function_is_refused(tmp_path, victims_dsn):
    done = check(tmp_path, "SELECT count(*) AS n FROM victims WHERE id === 1", victims_dsn)
    assert await victims(victims_dsn) == 3
    assert done.returncode == 3, done.stdout + done.stderr
    assert "public.same() (the function behind operator ===)" in done.stdout


async def test_a_wrapper_cannot_notify_other_sessions(tmp_path, victims_dsn):
    heard: list[str] = []
    listener = await asyncpg.connect(victims_dsn)
    try:
        await listener.add_listener("cutover_fault", lambda *a: heard.append(a[3]))
        done = check(tmp_path, "SELECT ping() AS n", victims_dsn)
        # Notifications arrive in commit order: once our marker is heard, a notification
        # sent by the check would have been heard before it.
        await listener.execute("SELECT pg_notify('cutover_fault', 'marker')")
        while "marker" not in heard:
            await listener.execute("SELECT 1")
    finally:
        await listener.close()
    assert heard == ["marker"]
    assert done.returncode == 3, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT pg_advisory_lock(42) AS n", "pg_advisory_lock"),
        ("SELECT set_config('search_path', 'evil', false) AS n", "set_config"),
        ("SELECT pg_notify('cutover_fault', 'x') AS n", "pg_notify"),
        ("SELECT pg_terminate_backend(pid) AS n FROM pg_stat_activity", "pg_terminate_backend"),
        ("SELECT pg_reload_conf() AS n", "pg_reload_conf"),
        ("SELECT length(pg_read_file('postgresql.conf')) AS n", "pg_read_file"),
        ("SELECT count(*) AS n FROM dblink('x', 'SELECT 1') AS t(a int)", "dblink"),
    ],
)
async def test_a_call_that_acts_beyond_the_transaction_is_refused_by_name(
    tmp_path, victims_dsn, sql: str, named: str
):
    done = check(tmp_path, sql, victims_dsn)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{tmp_path}/q.sql:2:" in done.stderr
    assert f"calls {named}()" in done.stderr


async def test_the_runner_never_sends_a_refused_query_and_says_why(victims_dsn):
    # A query that reached the runner without the loader (a stale copy, a test, a bug)
    # is judged again on its own: the session keeps its settings, the trigger reads UNKNOWN.
    query = Query(
        id="q",
        title="q",
        file=Path("q.sql"),
        statement=None,
        refresh_s=30,
        sql="SELECT set_config('application_name', 'changed', false) AS n",
        sql_line=4,
        sql_col=1,
    )
    runner = QueryRunner(Database(), victims_dsn, size=1)
    try:
        result = await runner.run(query)
        assert result.cause is Cause.REFUSED
        assert result.error is not None and "(q.sql:4:8)" in result.error
        again = await runner.run(query)  # judged once, still refused
        assert again.cause is Cause.REFUSED
        show = Query(
            id="s", title="s", file=Path("s.sql"), statement=None, refresh_s=30,
            sql="SELECT current_setting('application_name') AS name",
        )  # fmt: skip
        shown = await runner.run(show)
        assert shown.rows == (("cutover",),)
    finally:
        await runner.aclose()


async def test_a_volatile_function_on_the_allow_list_still_runs(victims_dsn):
    query = Query(
        id="q", title="q", file=Path("q.sql"), statement=None, refresh_s=30,
        sql="SELECT clock_timestamp() > now() - interval '1 day' AS fresh, random() < 2 AS r",
    )  # fmt: skip
    runner = QueryRunner(Database(), victims_dsn, size=1)
    try:
        result = await runner.run(query)
    finally:
        await runner.aclose()
    assert result.error is None
    assert result.rows == ((True, True),)


async def test_queries_judged_together_are_refused_exactly_as_each_alone(victims_dsn):
    # A check judges all its queries in one round trip before they run: a wrapper function,
    # a schema-qualified one and an operator hidden among harmless queries are still each
    # refused, and the harmless ones still run.
    texts = {
        "count": "SELECT count(*) AS n FROM victims",
        "sweep": "SELECT sweep() AS n",
        "clock": "SELECT clock_timestamp() > now() - interval '1 day' AS fresh",
        "tidy": "SELECT ops.tidy() AS n",
        "same": "SELECT count(*) AS n FROM victims WHERE id === 1",
        "plain": "SELECT 1 AS n",
    }
    queries = [
        Query(id=i, title=i, file=Path(f"{i}.sql"), statement=None, refresh_s=30, sql=sql)
        for i, sql in texts.items()
    ]
    together = QueryRunner(Database(), victims_dsn, size=2)
    alone = QueryRunner(Database(), victims_dsn, size=1)
    try:
        await together.judge_all(queries)
        ran = {q.id: await together.run(q) for q in queries}
        each = {q.id: await alone.run(q) for q in queries}
    finally:
        await together.aclose()
        await alone.aclose()
    assert await victims(victims_dsn) == 3
    refused = {i for i, r in ran.items() if r.cause is Cause.REFUSED}
    assert refused == {"sweep", "tidy", "same"}
    assert {i: r.error for i, r in ran.items()} == {i: r.error for i, r in each.items()}
    assert ran["count"].rows == ((3,),)
