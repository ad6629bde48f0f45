"""A query reaches functions it never names: attribute notation (k.f is f(k)), a cast WITH
FUNCTION, a domain's CHECK constraint, a default argument, an aggregate's step, an implicit
cast. The guard resolves each on a real Postgres, before Postgres parses the query, and
refuses the VOLATILE ones where they are written, so none of them can delete a row through
dblink; ordinary casts still pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

Ran = subprocess.CompletedProcess

RUNBOOK = """\
version = 1
title = "hidden calls"

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
async def hidden_dsn(empty_dsn: str) -> str:
    """Three rows to lose, and functions a query can reach without naming them, each of
    which deletes those rows through dblink (plpgsql functions are VOLATILE by default)."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            f"""
            CREATE EXTENSION dblink;
            CREATE TABLE victims (id int);
            INSERT INTO victims VALUES (1), (2), (3);
            CREATE FUNCTION sweep() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM dblink_exec('{empty_dsn}', 'DELETE FROM victims');
              RETURN 1;
            END $$;
            -- Attribute notation: k.h_evil_row is h_evil_row(k).
            CREATE TABLE k (id int);
            INSERT INTO k VALUES (1);
            CREATE FUNCTION h_evil_row(k) RETURNS int LANGUAGE plpgsql AS $$
            BEGIN RETURN sweep(); END $$;
            -- A cast WITH FUNCTION: m::int runs mood_rank(m).
            CREATE TYPE mood AS ENUM ('calm', 'cross');
            CREATE TABLE moods (m mood);
            INSERT INTO moods VALUES ('calm');
            CREATE FUNCTION mood_rank(mood) RETURNS int LANGUAGE plpgsql AS $$
            BEGIN RETURN sweep(); END $$;
            CREATE CAST (mood AS int) WITH FUNCTION mood_rank(mood);
            -- A domain whose CHECK calls a volatile function: 1::checked runs approve(1).
            CREATE FUNCTION approve(int) RETURNS bool LANGUAGE plpgsql AS $$
            BEGIN RETURN sweep() = 1; END $$;
            CREATE DOMAIN checked AS int CHECK (approve(VALUE));
            CREATE TYPE boxed AS (v checked);
            -- A STABLE function whose default argument calls a volatile one.
            CREATE FUNCTION stamp(a int, b int DEFAULT sweep()) RETURNS int
              LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN a; END $$;
            -- An aggregate (Postgres marks every aggregate IMMUTABLE) with a volatile step.
            CREATE FUNCTION tally_step(int, int) RETURNS int LANGUAGE plpgsql AS $$
            BEGIN RETURN sweep(); END $$;
            CREATE AGGREGATE tally(int) (sfunc = tally_step, stype = int);
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


def run(tmp_path: Path, sql: str, dsn: str, command: str) -> Ran:
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


HIDDEN = [
    pytest.param(
        "SELECT k.h_evil_row AS n FROM k",
        10,
        "calls public.h_evil_row() (called through attribute notation .h_evil_row)",
        id="attribute-notation",
    ),
    pytest.param(
        "SELECT (k).h_evil_row AS n FROM k",
        12,
        "calls public.h_evil_row() (called through attribute notation .h_evil_row)",
        id="attribute-of-a-parenthesized-row",
    ),
    pytest.param(
        "SELECT m::int AS n FROM moods",
        11,
        "calls public.mood_rank() (the cast from mood to integer)",
        id="double-colon-cast",
    ),
    pytest.param(
        "SELECT CAST(m AS int) AS n FROM moods",
        18,
        "calls public.mood_rank() (the cast from mood to integer)",
        id="CAST",
    ),
    pytest.param(
        "SELECT 1::checked AS n",
        11,
        "calls public.approve() (the cast to checked: a CHECK constraint of domain checked)",
        id="domain-check",
    ),
    pytest.param(
        "SELECT count(*) AS n FROM k WHERE id = ANY ('{1}'::checked[])",
        52,
        "calls public.approve() (the cast to checked: a CHECK constraint of domain checked)",
        id="array-of-a-domain",
    ),
    pytest.param(
        "SELECT count(*) AS n FROM k WHERE '(1)'::boxed IS NOT NULL",
        42,
        "calls public.approve() (the cast to boxed: a CHECK constraint of domain checked)",
        id="row-with-a-domain-column",
    ),
    pytest.param(
        "SELECT checked(1) AS n",
        8,
        "calls public.approve() (a CHECK constraint of domain checked)",
        id="function-style-cast-to-a-domain",
    ),
    pytest.param(
        "SELECT stamp(1) AS n",
        8,
        "calls public.sweep() (reached through stamp(integer,integer))",
        id="default-argument",
    ),
    pytest.param(
        "SELECT tally(id) AS n FROM k",
        8,
        "calls public.tally_step() (reached through tally(integer))",
        id="aggregate-step",
    ),
]


@pytest.mark.parametrize(("sql", "col", "refused"), HIDDEN)
async def test_validate_refuses_a_call_the_query_never_names_at_its_sql_position(
    tmp_path, hidden_dsn, sql: str, col: int, refused: str
):
    done = run(tmp_path, sql, hidden_dsn, "validate")
    assert await victims(hidden_dsn) == 3
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{tmp_path}/q.sql:2:{col}: query 'q' may not run: {refused}" in done.stderr
    assert "VOLATILE" in done.stderr


@pytest.mark.parametrize(
    ("sql", "col"),
    [
        ("SELECT k.h_evil_row AS n FROM k", 10),
        ("SELECT m::int AS n FROM moods", 11),
        ("SELECT 1::checked AS n", 11),
        ("SELECT stamp(1) AS n", 8),
    ],
)
async def test_check_never_sends_a_query_that_reaches_a_volatile_function(
    tmp_path, hidden_dsn, sql: str, col: int
):
    done = run(tmp_path, sql, hidden_dsn, "check")
    assert await victims(hidden_dsn) == 3
    # The trigger cannot be evaluated: unknown, never quiet, and check waits (exit 3).
    assert done.returncode == 3, done.stdout + done.stderr
    assert "? UNKNOWN  errors" in done.stdout
    assert f"refused, not sent to the database (q.sql:2:{col})" in done.stdout


async def test_an_implicit_cast_the_text_never_shows_is_refused(tmp_path, hidden_dsn):
    # h + 1 adds integers: Postgres casts h to int on its own, through hue_rank().
    conn = await asyncpg.connect(hidden_dsn)
    try:
        await conn.execute(
            """
            CREATE TYPE hue AS ENUM ('red');
            CREATE TABLE hues (h hue);
            INSERT INTO hues VALUES ('red');
            CREATE FUNCTION hue_rank(hue) RETURNS int LANGUAGE plpgsql AS $$
            BEGIN RETURN sweep(); END $$;
            CREATE CAST (hue AS int) WITH FUNCTION hue_rank(hue) AS IMPLICIT;
            """
        )
    finally:
        await conn.close()
    done = run(tmp_path, "SELECT h + 1 AS n FROM hues", hidden_dsn, "check")
    assert await victims(hidden_dsn) == 3
    assert done.returncode == 3, done.stdout + done.stderr
    assert "refused, not sent to the database (q.sql:2:10)" in done.stdout
    assert "public.hue_rank() (the function behind operator +: an implicit cast" in done.stdout


def test_txid_current_is_refused_though_postgres_calls_it_stable(tmp_path, hidden_dsn):
    # It gives the read-only transaction a transaction ID of its own: refused by name.
    done = run(tmp_path, "SELECT txid_current() AS n", hidden_dsn, "validate")
    assert done.returncode == 2, done.stdout + done.stderr
    refused = "a query must be one read-only statement: calls txid_current(), which assigns"
    assert f"{tmp_path}/q.sql:2:8: {refused}" in done.stderr


async def test_ordinary_casts_still_pass_beside_harmful_ones(tmp_path, hidden_dsn):
    # The same database holds a volatile cast into int and a domain over int: a string
    # cast to int, the clock cast to a date and a column cast to text call neither.
    sql = (
        "SELECT count(*) + '1'::int AS n, now()::date AS day, CAST(k.id AS text) AS t,\n"
        "       date '2020-01-01' AS since, max(k.id) FILTER (WHERE k.id BETWEEN 0 AND 9) AS m\n"
        "  FROM k JOIN k AS j USING (id) GROUP BY 2, 3"
    )
    validated = run(tmp_path, sql, hidden_dsn, "validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "all prepared on Postgres" in validated.stdout
    checked = run(tmp_path, sql, hidden_dsn, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "refused" not in checked.stdout
    assert await victims(hidden_dsn) == 3
