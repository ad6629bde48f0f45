"""The shipped queries run on real Postgres and give each scenario the numbers it should."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import scenarios
from cutover.runbook.sqlfile import Statement, read_only_problem, read_sql_file

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = tomllib.loads((ROOT / "runbook.toml").read_text(encoding="utf-8"))
# indexes.sql is advice for the database's owner, not a query: tested on its own below.
INDEX_ADVICE = ROOT / "queries" / "indexes.sql"
SQL_FILES = sorted(p for p in (ROOT / "queries").glob("*.sql") if p != INDEX_ADVICE)
SCHEMA_SQL = ROOT / "src" / "cutover" / "demo" / "schema.sql"
BUCKETS = ["< 5 min", "5–10 min", "10–20 min", "20–30 min", "> 30 min"]


SQL_QUERIES = {q: spec for q, spec in RUNBOOK["queries"].items() if "file" in spec}


def statement_of(query_id: str) -> Statement:
    spec = SQL_QUERIES[query_id]
    return read_sql_file(ROOT / spec["file"])[spec.get("statement", 1) - 1]


async def fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    """As the console runs a query: parameters not given are NULL (the query's default)."""
    prepared = await conn.prepare(sql)
    wanted = len(prepared.get_parameters())
    return await prepared.fetch(*(list(args) + [None] * wanted)[:wanted])


async def rows(conn: asyncpg.Connection, query_id: str, *args: Any) -> list[dict[str, Any]]:
    # Read-only transaction: a statement that writes would fail here, not pass.
    async with conn.transaction(readonly=True):
        return [dict(r) for r in await fetch(conn, statement_of(query_id).text, *args)]


async def first(conn: asyncpg.Connection, query_id: str) -> dict[str, Any]:
    result = await rows(conn, query_id)
    assert len(result) == 1, result
    return result[0]


@pytest.fixture
async def conn(soulprint_dsn: str):
    connection = await asyncpg.connect(soulprint_dsn)
    try:
        yield connection
    finally:
        await connection.close()


# --- every file, every statement ---


def test_there_are_queries_for_all_six_validations_and_the_extras():
    names = [p.name for p in SQL_FILES]
    for prefix in ("00_", "01_", "02_", "03_", "04_", "05_", "06_", "07_", "08_"):
        assert any(n.startswith(prefix) for n in names), (prefix, names)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_every_statement_has_a_title_and_help_and_only_reads(path: Path):
    statements = read_sql_file(path)
    assert statements, path
    assert path.read_text(encoding="utf-8").startswith("-- ====")  # the banner
    for stmt in statements:
        assert stmt.title, (path.name, stmt.index)
        assert stmt.help, (path.name, stmt.index)
        assert stmt.keyword in ("SELECT", "WITH"), (path.name, stmt.index)
        assert read_only_problem(stmt) is None, (path.name, stmt.index)


def test_commented_out_statements_are_not_counted():
    assert [s.title for s in read_sql_file(ROOT / "queries" / "04_top_errors.sql")] == [
        "Top 10 error patterns, last 24 h",
        "New error patterns, last 24 h",
        "The most widespread error pattern, last 24 h",
        "Every system error pattern, last 24 h",
    ]
    assert len(read_sql_file(ROOT / "queries" / "06_timeline.sql")) == 2


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS)
async def test_every_statement_runs_read_only_on_postgres(conn, scenario: str):
    await scenarios.load(conn, scenario)
    for path in SQL_FILES:
        for stmt in read_sql_file(path):
            async with conn.transaction(readonly=True):
                await fetch(conn, stmt.text)


async def test_runbook_columns_exist_in_the_statements_they_name(conn):
    async def columns(query_id: str) -> set[str]:
        prepared = await conn.prepare(statement_of(query_id).text)
        return {a.name for a in prepared.get_attributes()}

    assert set(SQL_QUERIES) == {
        "migration_columns", "success_rate", "stuck_imports", "stuck_burst",
        "duration_histogram", "slow_last_hour", "top_errors", "new_errors",
        "widespread_error", "v1_vs_v2", "v1_traffic", "timeline", "v2_share",
        "v2_since_rollback", "in_flight_v2", "slow_share", "error_patterns", "traffic_drop",
        "v2_rows",
    }  # fmt: skip
    checks = [g for stage in RUNBOOK["stages"] for g in stage.get("gates", [])]
    checks += [g for gates in RUNBOOK["gatesets"].values() for g in gates["gates"]]
    checks += RUNBOOK["rollback"]["gates"]
    checks += [t for t in RUNBOOK["triggers"] if t.get("kind") != "manual"]
    checks.append(RUNBOOK["flag"]["observed"])
    for check in checks:
        if check["query"] not in SQL_QUERIES:
            continue  # an http query: its columns are declared in the runbook
        named = {check.get(k) for k in ("column", "successes", "trials")} - {None}
        named |= set(check.get("row", {}) if isinstance(check.get("row"), dict) else {})
        named |= set((check.get("distribution") or {}).values())
        named |= set((check.get("new_rows") or {}).values())
        assert named or check.get("row_count"), check
        assert named <= await columns(check["query"]), check


def test_stages_follow_the_soulprint_plan():
    plan = [(s["id"], s["percent"], s["hold"]) for s in RUNBOOK["stages"]]
    assert plan == [
        ("prerequisites", 0, "0s"),
        ("canary", 10, "24h"),
        ("ramp", 50, "48h"),
        ("full", 100, "7d"),
        ("deprecation", 100, "7d"),
    ]
    assert {t["id"]: t["severity"] for t in RUNBOOK["triggers"]} == {
        "success_below_95": "critical",
        "success_below_95_at_full": "medium",
        "stuck_burst": "critical",
        "slow_persisting": "medium",
        "memory_high": "critical",
        "memory_rising": "medium",
        "traffic_drop": "high",
        "user_complaints": "high",
        "oom": "critical",
        "data_corruption": "critical",
    }


# --- the numbers each scenario gives ---


async def test_healthy_passes_every_gate_query(conn):
    await scenarios.load(conn, "healthy")
    rate = await first(conn, "success_rate")
    assert rate == {
        "total_imports": 1000,
        "successful_imports": 990,
        "failed_imports": 10,
        "stuck_imports": 0,
        "in_flight_imports": 10,
        "user_errors": 5,  # the users' own broken exports: not judged
        "success_rate_pct": Decimal("99.00"),
    }
    assert await rows(conn, "stuck_imports") == []
    assert (await first(conn, "stuck_burst"))["newly_stuck_imports"] == 0
    # The 24 h messages differ from last week's in their numbers only: nothing is new.
    assert await rows(conn, "new_errors") == []
    assert (await first(conn, "slow_last_hour"))["slow_imports"] == 0
    assert await first(conn, "migration_columns") == {
        "present_columns": 4,
        "expected_columns": 4,
        "missing_columns": None,
    }
    widespread = await first(conn, "widespread_error")
    assert widespread == {
        "error_pattern": "Embedding batch N failed: connection reset by peer",
        "affected_users": 4,
        "importing_users": 1000,
        "affected_pct": Decimal("0.40"),
    }
    share = await first(conn, "v2_share")
    assert (share["imports"], share["v2_imports"], share["v2_pct"]) == (10, 1, Decimal("10.0"))
    assert (await first(conn, "v1_traffic"))["v1_imports_7d"] > 900


async def test_healthy_histogram_has_five_buckets_mostly_under_ten_minutes(conn):
    await scenarios.load(conn, "healthy")
    histogram = await rows(conn, "duration_histogram")
    assert [r["bucket"] for r in histogram] == BUCKETS
    counts = [r["imports"] for r in histogram]
    assert sum(counts) == 990  # completed imports only
    assert counts[0] + counts[1] > 0.8 * 990
    assert counts[3:] == [0, 0]
    assert abs(sum(r["pct"] for r in histogram) - 100) <= Decimal("0.3")


async def test_healthy_top_errors_are_masked_patterns_with_shares(conn):
    await scenarios.load(conn, "healthy")
    errors = await rows(conn, "top_errors")
    assert len(errors) == 4
    assert "RLM timeout after Ns" in {e["error_pattern"] for e in errors}
    assert sum(e["failures"] for e in errors) == 15
    classes = {e["error_pattern"]: e["class"] for e in errors}
    assert classes.pop(scenarios.USER_ERROR) == "user"  # the user's broken export
    assert set(classes.values()) == {"system"}
    assert all(e["affected_users"] == e["failures"] for e in errors)
    assert abs(sum(e["share_pct"] for e in errors) - 100) <= Decimal("0.3")
    assert [e["failures"] for e in errors] == sorted((e["failures"] for e in errors), reverse=True)


async def test_healthy_timeline_is_six_clock_hours_ending_now(conn):
    await scenarios.load(conn, "healthy")
    timeline = await rows(conn, "timeline")
    assert len(timeline) == 6
    this_hour = await conn.fetchval("SELECT date_trunc('hour', now())")
    assert timeline[-1]["hour_start"] == this_hour
    assert sum(r["in_progress"] for r in timeline) == 10
    assert sum(r["started"] for r in timeline) > 0


async def test_degraded_shows_the_drop_and_the_new_error(conn):
    await scenarios.load(conn, "degraded")
    rate = await first(conn, "success_rate")
    assert (rate["total_imports"], rate["successful_imports"]) == (200, 180)
    assert rate["success_rate_pct"] == Decimal("90.00")
    new = await rows(conn, "new_errors")
    assert [(r["error_pattern"], r["failures"]) for r in new] == [(scenarios.NEW_ERROR_PATTERN, 10)]
    top = (await rows(conn, "top_errors"))[0]
    assert (top["error_pattern"], top["share_pct"]) == (scenarios.NEW_ERROR_PATTERN, 50)


async def test_degraded_v1_vs_v2_puts_the_failures_on_v2(conn):
    await scenarios.load(conn, "degraded")
    split = {r["pipeline_version"]: r for r in await rows(conn, "v1_vs_v2")}
    assert list(split) == ["v1", "v2"]
    assert (split["v1"]["total_imports"], split["v1"]["success_rate_pct"]) == (160, 100)
    assert (split["v2"]["total_imports"], split["v2"]["successful_imports"]) == (40, 20)
    assert split["v2"]["success_rate_pct"] == Decimal("50.00")


async def test_too_little_data_is_19_of_20(conn):
    await scenarios.load(conn, "too_little_data")
    rate = await first(conn, "success_rate")
    assert (rate["successful_imports"], rate["total_imports"]) == (19, 20)
    assert rate["success_rate_pct"] == Decimal("95.00")
    assert await rows(conn, "new_errors") == []


async def test_stuck_imports_are_listed_counted_and_burst(conn):
    await scenarios.load(conn, "stuck")
    rate = await first(conn, "success_rate")
    assert (rate["stuck_imports"], rate["total_imports"], rate["successful_imports"]) == (
        12,
        1012,
        990,
    )
    stuck = await rows(conn, "stuck_imports")
    minutes = [r["minutes_stuck"] for r in stuck]
    assert len(stuck) == 12
    assert minutes == sorted(minutes, reverse=True)  # longest stuck first
    assert all(129 <= m <= 176 for m in minutes), minutes
    assert (await first(conn, "stuck_burst"))["newly_stuck_imports"] == 12


async def test_stuck_burst_counts_only_imports_that_became_stuck_in_the_last_hour(conn):
    await scenarios.load(conn, "stuck")
    await conn.execute(
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at)"
        " SELECT 'processing', now() - interval '5 hours' FROM generate_series(1, 4)"
    )
    assert len(await rows(conn, "stuck_imports")) == 16
    assert (await first(conn, "stuck_burst"))["newly_stuck_imports"] == 12


async def test_empty_window_judges_nothing(conn):
    await scenarios.load(conn, "empty")
    rate = await first(conn, "success_rate")
    assert (rate["total_imports"], rate["successful_imports"]) == (0, 0)
    assert rate["success_rate_pct"] is None
    histogram = await rows(conn, "duration_histogram")
    assert [(r["bucket"], r["imports"], r["pct"]) for r in histogram] == [
        (b, 0, None) for b in BUCKETS
    ]
    assert await rows(conn, "top_errors") == []
    assert await rows(conn, "new_errors") == []
    assert await rows(conn, "stuck_imports") == []
    assert await first(conn, "widespread_error") == {
        "error_pattern": None,
        "affected_users": 0,
        "importing_users": 0,
        "affected_pct": None,
    }
    assert (await first(conn, "v2_share"))["v2_pct"] is None
    split = await rows(conn, "v1_vs_v2")
    assert [(r["pipeline_version"], r["total_imports"], r["success_rate_pct"]) for r in split] == [
        ("v1", 0, None),
        ("v2", 0, None),
    ]
    timeline = await rows(conn, "timeline")
    assert len(timeline) == 6
    assert all(r["started"] == r["completed"] == r["failed"] == 0 for r in timeline)


async def test_slow_imports_of_the_last_hour_are_counted(conn):
    await scenarios.load(conn, "slow")
    slow = await first(conn, "slow_last_hour")
    assert (slow["slow_imports"], slow["longest_minutes"]) == (2, 45)
    histogram = {r["bucket"]: r["imports"] for r in await rows(conn, "duration_histogram")}
    assert histogram["> 30 min"] == 12


async def test_an_hour_without_slow_imports_reads_zero(conn):
    await scenarios.load(conn, "slow")
    await conn.execute(
        "DELETE FROM user_profiles"
        " WHERE full_pass_completed_at - full_pass_started_at > interval '30 minutes'"
        "   AND full_pass_completed_at > now() - interval '1 hour'"
    )
    slow = await first(conn, "slow_last_hour")
    assert (slow["slow_imports"], slow["longest_minutes"]) == (0, None)


# --- after a rollback ---


async def test_v2_imports_since_the_rollback_count_only_those_after_it(conn):
    await scenarios.load(conn, "healthy")
    now = await conn.fetchval("SELECT now()")
    # healthy: 1 of the 10 in flight is v2, started 5 minutes ago
    assert (await first_with(conn, "v2_since_rollback", now - timedelta(minutes=6))) == 1
    assert (await first_with(conn, "v2_since_rollback", now - timedelta(minutes=4))) == 0
    # one v1 and one v2 import after the rollback: only the v2 one counts
    await conn.execute(
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at, pipeline_version)"
        " VALUES ('processing', now(), 'v1'), ('processing', now(), 'v2')"
    )
    assert (await first_with(conn, "v2_since_rollback", now - timedelta(minutes=4))) == 1


async def first_with(conn: asyncpg.Connection, query_id: str, since) -> int:
    result = await rows(conn, query_id, since)
    assert len(result) == 1
    return result[0]["v2_imports"]


async def test_in_flight_v2_imports_drain_to_zero(conn):
    await scenarios.load(conn, "stuck")  # the 12 stuck ones are v1 in this scenario
    in_flight = await first(conn, "in_flight_v2")
    assert (in_flight["in_flight_imports"], in_flight["stuck_imports"]) == (1, 0)
    await conn.execute(
        "UPDATE user_profiles SET full_pass_status = 'complete',"
        " full_pass_completed_at = now() WHERE full_pass_status = 'processing'"
        " AND pipeline_version = 'v2'"
    )
    in_flight = await first(conn, "in_flight_v2")
    assert (in_flight["in_flight_imports"], in_flight["oldest_started_at"]) == (0, None)


# --- the real schema: no pipeline_version ---


async def test_without_pipeline_version_only_the_queries_that_need_it_fail(empty_dsn: str):
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
        await conn.execute("ALTER TABLE user_profiles DROP COLUMN pipeline_version")
        await conn.execute(
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
            " full_pass_completed_at) VALUES ('complete', now() - interval '1 hour',"
            " now() - interval '55 minutes')"
        )
        needs_version = {q for q, spec in SQL_QUERIES.items() if "needs" in spec}
        # without the column every row is a v2 import: the rollback queries count it
        assert (await first(conn, "in_flight_v2"))["in_flight_imports"] == 0
        await conn.execute(
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at)"
            " VALUES ('processing', now())"
        )
        assert (await first(conn, "in_flight_v2"))["in_flight_imports"] == 1
        assert (await first(conn, "v2_since_rollback"))["v2_imports"] == 1
        assert needs_version == {"v1_vs_v2", "v1_traffic", "v2_share"}
        for query_id in SQL_QUERIES:
            if query_id in needs_version:
                missing = asyncpg.exceptions.UndefinedColumnError
                with pytest.raises(missing, match="pipeline_version"):
                    await rows(conn, query_id)
            else:
                await rows(conn, query_id)
        # pipeline_version is not one of the migration's columns: the prerequisite holds
        assert await first(conn, "migration_columns") == {
            "present_columns": 4,
            "expected_columns": 4,
            "missing_columns": None,
        }
        assert (await first(conn, "success_rate"))["successful_imports"] == 1
        assert (await first(conn, "success_rate"))["in_flight_imports"] == 1
    finally:
        await conn.close()


# --- statements rewritten to cost less on a big table give the rows they gave before ---

# As they were before the rewrite (six correlated scans; a five-way join; a filter no
# index serves): the reference the shipped statements must agree with, row for row.
BEFORE = {
    "timeline": """
WITH hours AS (
    SELECT generate_series(date_trunc('hour', now()) - interval '5 hours',
                           date_trunc('hour', now()),
                           interval '1 hour') AS hour_start
)
SELECT h.hour_start,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_started_at >= h.hour_start
           AND p.full_pass_started_at < h.hour_start + interval '1 hour') AS started,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'complete'
           AND p.full_pass_completed_at >= h.hour_start
           AND p.full_pass_completed_at < h.hour_start + interval '1 hour') AS completed,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'failed'
           AND coalesce(p.full_pass_completed_at, p.full_pass_started_at) >= h.hour_start
           AND coalesce(p.full_pass_completed_at, p.full_pass_started_at)
               < h.hour_start + interval '1 hour') AS failed,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'processing'
           AND p.full_pass_started_at >= h.hour_start
           AND p.full_pass_started_at < h.hour_start + interval '1 hour') AS in_progress
  FROM hours AS h
 ORDER BY h.hour_start""",
    "duration_histogram": """
WITH durations AS (
    SELECT extract(epoch FROM full_pass_completed_at - full_pass_started_at) / 60 AS minutes
      FROM user_profiles
     WHERE full_pass_status = 'complete'
       AND full_pass_completed_at IS NOT NULL
       AND full_pass_started_at >= now() - interval '24 hours'
),
buckets (position, bucket, from_min, to_min) AS (
    VALUES (1, '< 5 min',   NULL::numeric, 5::numeric),
           (2, '5–10 min',  5,             10),
           (3, '10–20 min', 10,            20),
           (4, '20–30 min', 20,            30),
           (5, '> 30 min',  30,            NULL)
),
counted AS (
    SELECT b.position, b.bucket, count(d.minutes) AS imports
      FROM buckets AS b
      LEFT JOIN durations AS d
             ON (b.from_min IS NULL OR d.minutes >= b.from_min)
            AND (b.to_min IS NULL OR d.minutes < b.to_min)
     GROUP BY b.position, b.bucket
)
SELECT bucket,
       imports,
       round(100.0 * imports / NULLIF(sum(imports) OVER (), 0), 1) AS pct
  FROM counted
 ORDER BY position""",
    "v1_traffic": """
SELECT count(*)                  AS v1_imports_7d,
       max(full_pass_started_at) AS last_v1_started_at
  FROM user_profiles
 WHERE pipeline_version IS DISTINCT FROM 'v2'
   AND full_pass_started_at >= now() - interval '7 days'""",
}


async def edges(conn: asyncpg.Connection) -> None:
    """Imports exactly on hour and bucket boundaries, finishing in another hour than they
    started, failed without a finish time, in the future, and without a recorded version."""
    await conn.execute("ALTER TABLE user_profiles ALTER COLUMN pipeline_version DROP NOT NULL")
    await conn.execute(
        """
        INSERT INTO user_profiles (full_pass_status, full_pass_started_at,
                                   full_pass_completed_at, full_pass_error, pipeline_version)
        SELECT s.status, h + s.started_after, h + s.started_after + s.took, s.error, s.version
          FROM generate_series(date_trunc('hour', now()) - interval '7 hours',
                               date_trunc('hour', now()) + interval '1 hour',
                               interval '1 hour') AS h
         CROSS JOIN (VALUES
             ('complete', interval '0',          interval '5 minutes',  NULL, 'v1'),
             ('complete', interval '-1 second',  interval '10 minutes', NULL, 'v2'),
             ('complete', interval '59 minutes', interval '20 minutes', NULL, NULL),
             ('complete', interval '30 minutes', interval '30 minutes', NULL, 'v1'),
             ('complete', interval '1 minute',   interval '4 minutes 59.999999 seconds',
              NULL, NULL),
             ('failed',   interval '0',          NULL,                  'boom 1', 'v2'),
             ('failed',   interval '59 minutes', interval '2 minutes',  'boom 2', NULL),
             ('processing', interval '0',        NULL,                  NULL, 'v1'),
             ('processing', interval '-1 microsecond', NULL,            NULL, NULL)
         ) AS s (status, started_after, took, error, version)
        """
    )


@pytest.mark.parametrize("scenario", [*scenarios.SCENARIOS, "edges"])
async def test_rewritten_statements_give_the_rows_they_gave_before(conn, scenario: str):
    await scenarios.load(conn, "healthy" if scenario == "edges" else scenario)
    if scenario == "edges":
        await edges(conn)
    # One snapshot and one now() for both versions of each statement.
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        for query_id, before in BEFORE.items():
            now = [tuple(r) for r in await fetch(conn, statement_of(query_id).text)]
            then = [tuple(r) for r in await fetch(conn, before)]
            assert now == then, query_id


# --- the index advice ---


def test_index_advice_only_creates_indexes_without_blocking_writes_and_no_query_reads_it():
    statements = read_sql_file(INDEX_ADVICE)
    assert statements
    for stmt in statements:
        words = " ".join(stmt.text.split()[:6]).upper()
        assert words.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS"), stmt.text
        assert " ON user_profiles " in " ".join(stmt.text.split()) + " ", stmt.text
        assert stmt.title and stmt.help, stmt.index
        assert "Costs:" in stmt.help, stmt.index  # what it costs, next to what it serves
    assert all(spec["file"] != "queries/indexes.sql" for spec in SQL_QUERIES.values())


def test_index_advice_names_the_shipped_queries_it_serves():
    import re

    named = re.findall(r"\b([a-z0-9]+(?:_[a-z0-9]+)+) \((\d\d)\b", INDEX_ADVICE.read_text())
    assert named
    for query_id, prefix in named:
        assert query_id in SQL_QUERIES, query_id
        assert Path(SQL_QUERIES[query_id]["file"]).name.startswith(prefix + "_"), query_id


async def test_index_advice_applies_on_the_schema_and_changes_no_answer(conn):
    await scenarios.load(conn, "healthy")
    await edges(conn)
    for _ in range(2):  # as written, and a second run changes nothing (IF NOT EXISTS)
        for stmt in read_sql_file(INDEX_ADVICE):
            await conn.execute(stmt.text)  # outside a transaction, as CONCURRENTLY needs
    created = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'user_profiles'")
    assert {"user_profiles_failed_started_idx", "user_profiles_started_covering_idx"} <= {
        r["indexname"] for r in created
    }
    await conn.execute("ANALYZE user_profiles")

    async def answers() -> dict[str, list[tuple]]:
        return {q: [tuple(r) for r in await fetch(conn, statement_of(q).text)] for q in SQL_QUERIES}

    # The same snapshot and now(), read with the indexes and with Postgres kept off them.
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        with_indexes = await answers()
        for scan in ("indexscan", "indexonlyscan", "bitmapscan"):
            await conn.execute(f"SET LOCAL enable_{scan} = off")
        without = await answers()
    assert with_indexes == without
