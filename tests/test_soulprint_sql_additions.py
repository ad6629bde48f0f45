"""What the shipped queries now say on real Postgres: a stuck import is stuck whatever its age;
an error pattern keeps its status code; a user's own broken export counts toward no rate and
no systemic pattern; the whole set of patterns for "no new error types"; the > 30 min share;
a drop in started imports; where imports went, from the rows. And the shipped probes against
the fake RLM: Sunset and the successor Link required, v1 gone checked by POST."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import scenarios
from cutover.runbook.model import Probe
from cutover.runbook.sqlfile import read_sql_file
from cutover.sources.probes import ProbeStatus, run_probe

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = tomllib.loads((ROOT / "runbook.toml").read_text(encoding="utf-8"))


def statement(query_id: str) -> str:
    spec = RUNBOOK["queries"][query_id]
    return read_sql_file(ROOT / spec["file"])[spec.get("statement", 1) - 1].text


async def rows(conn: asyncpg.Connection, query_id: str) -> list[dict[str, Any]]:
    prepared = await conn.prepare(statement(query_id))
    nulls = [None] * len(prepared.get_parameters())
    async with conn.transaction(readonly=True):
        return [dict(r) for r in await prepared.fetch(*nulls)]


@pytest.fixture
async def conn(soulprint_dsn: str):
    connection = await asyncpg.connect(soulprint_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def failed(conn: asyncpg.Connection, *errors: str, version: str = "v2") -> None:
    await conn.executemany(
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
        " full_pass_completed_at, full_pass_error, pipeline_version)"
        " VALUES ('failed', now() - interval '1 hour', now() - interval '55 minutes', $1, $2)",
        [(e, version) for e in errors],
    )


async def test_an_error_pattern_keeps_its_status_code_and_masks_the_rest(conn):
    await failed(
        conn,
        "Export host answered HTTP 404",
        "Export host answered HTTP 404",
        "Export host answered HTTP 500",
        "RLM timeout after 301s",
        "RLM timeout after 305s",
        "Upstream rate limited (429), retry in 12 s",
        "Storage status: 503 for 8c0e4d36-1f77-4f4b-9a55-0b5b2f1e6a01",
        "Embedding batch 17 failed: connection reset by peer",
    )
    patterns = {r["error_pattern"]: r["failures"] for r in await rows(conn, "error_patterns")}
    assert patterns == {
        "Export host answered HTTP 404": 2,
        "Export host answered HTTP 500": 1,  # not the same error as a 404
        "RLM timeout after Ns": 2,
        "Upstream rate limited (429), retry in N s": 1,
        "Storage status: 503 for <id>": 1,
        "Embedding batch N failed: connection reset by peer": 1,
    }


async def test_the_set_for_new_error_types_is_every_pattern_not_ten(conn):
    await failed(conn, *(f"failure kind {chr(97 + i)}" for i in range(14)))
    assert len(await rows(conn, "top_errors")) == 10
    assert len(await rows(conn, "error_patterns")) == 14


async def test_a_users_broken_export_counts_toward_no_rate_and_no_systemic_pattern(conn):
    await conn.execute(
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
        " full_pass_completed_at, pipeline_version)"
        " SELECT 'complete', now() - interval '2 hours', now() - interval '110 minutes', 'v2'"
        "   FROM generate_series(1, 8)"
    )
    await failed(conn, *[scenarios.USER_ERROR] * 3, "Export too large: 3.2 GB")
    rate = (await rows(conn, "success_rate"))[0]
    assert (rate["total_imports"], rate["successful_imports"], rate["failed_imports"]) == (8, 8, 0)
    assert (rate["user_errors"], rate["success_rate_pct"]) == (4, 100)
    widespread = (await rows(conn, "widespread_error"))[0]
    assert (widespread["affected_users"], widespread["importing_users"]) == (0, 8)
    assert await rows(conn, "error_patterns") == []
    split = {r["pipeline_version"]: r for r in await rows(conn, "v1_vs_v2")}
    assert (split["v2"]["total_imports"], split["v2"]["failed_imports"]) == (8, 0)
    top = await rows(conn, "top_errors")
    assert {(r["error_pattern"], r["class"]) for r in top} == {
        (scenarios.USER_ERROR, "user"),
        ("Export too large: N.N GB", "user"),
    }


def test_every_statement_classes_errors_by_the_same_table():
    tables = set()
    for path in ("01_success_rate.sql", "04_top_errors.sql", "05_v1_vs_v2.sql"):
        text = (ROOT / "queries" / path).read_text(encoding="utf-8")
        for found in re.findall(r"error_classes \(pattern, class\) AS \((.*?)\n\)", text, re.S):
            rows_ = re.findall(r"\('([^']*)',\s*'(user|system)'\)", found)
            tables.add(tuple(rows_))
    assert len(tables) == 1, tables
    assert len(next(iter(tables))) >= 3


async def test_an_import_stuck_for_30_hours_is_still_stuck_and_still_in_flight(conn):
    await conn.execute(
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at, pipeline_version)"
        " VALUES ('processing', now() - interval '30 hours', 'v2'),"
        "        ('processing', now() - interval '3 hours', 'v2'),"
        "        ('processing', now() - interval '10 minutes', 'v2')"
    )
    stuck = await rows(conn, "stuck_imports")
    assert [r["minutes_stuck"] // 60 for r in stuck] == [30, 3]
    in_flight = (await rows(conn, "in_flight_v2"))[0]
    assert (in_flight["in_flight_imports"], in_flight["stuck_imports"]) == (3, 2)
    # The 24 h success rate counts only the one stuck within its window.
    assert (await rows(conn, "success_rate"))[0]["stuck_imports"] == 1


async def test_the_slow_share_the_traffic_drop_and_the_routed_rows(conn):
    await scenarios.load(conn, "slow")
    slow = (await rows(conn, "slow_share"))[0]
    assert (slow["slow_imports"], slow["completed_imports"]) == (12, 1002)
    assert float(slow["slow_pct"]) == pytest.approx(1.2)
    await scenarios.load(conn, "healthy")
    drop = (await rows(conn, "traffic_drop"))[0]
    # 45 an hour for the past 6 h, the last hour also the 10 in flight
    assert 0.14 < drop["started_last_hour"] / drop["started_6h"] < 0.2
    routed = (await rows(conn, "v2_rows"))[0]
    assert (routed["v2_imports"], routed["v1_imports"]) == (4, 35)


# --- the shipped probes against the fake RLM ---------------------------------------------------


def shipped_probe(probe_id: str, url: str) -> Probe:
    spec = dict(RUNBOOK["probes"][probe_id])
    spec["url"] = url + "/process-full"
    spec.pop("timeout", None)
    return Probe(id=probe_id, **spec)


async def test_the_deprecation_probe_wants_sunset_and_a_link_to_the_successor(rlm):
    probe = shipped_probe("v1_deprecation", rlm.url)
    assert (await run_probe(probe)).status is not ProbeStatus.FAIL  # legacy Deprecation: warned
    rlm.sunset_sent = False
    result = await run_probe(probe)
    assert result.status is ProbeStatus.FAIL
    assert "✗ header Sunset missing" in result.checks
    rlm.sunset_sent = True
    rlm.link = '</docs/migrate>; rel="deprecation"'
    result = await run_probe(probe)
    assert result.status is ProbeStatus.FAIL
    assert any(c.startswith("✗ header Link is '</docs/migrate>") for c in result.checks)


async def test_v1_gone_is_checked_by_a_post_as_the_original_curl(rlm):
    probe = shipped_probe("v1_removed", rlm.url)
    assert probe.method == "POST" and not probe.safe  # runs when its step is signed
    assert (await run_probe(probe)).status is ProbeStatus.FAIL  # the handler still answers
    rlm.v1_removed = True
    assert (await run_probe(probe)).status is ProbeStatus.PASS
