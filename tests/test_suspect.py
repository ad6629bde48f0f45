"""SUSPECT: a trigger whose point value is past its threshold while its interval still
straddles it. 18 of 20 imports succeeded: 90 %, under 95, yet 69.9–97.2 % as an interval.
Quiet would hide it and fired would roll back on too little: `check` says SUSPECT and how
many more imports decide it, `--json` names the state, and an advance is held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from cutover.judge.alarms import TriggerState, fold
from cutover.judge.check import judge_stage
from cutover.runbook.loader import load
from cutover.sources.results import QueryResult

RUNBOOK = """\
version = 1
title = "suspect"

[database]
dsn_env = "CUTOVER_DATABASE_URL"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag"

[queries.rate]
file = "rate.sql"

[[stages]]
id = "off"
percent = 0

[[stages]]
id = "canary"
percent = 10

[[triggers]]
id = "success_below_95"
query = "rate"
column = "pct"
op = "<"
value = 95
successes = "ok"
trials = "total"
severity = "critical"
"""

RATE_SQL = "-- Rate\nSELECT ok, total, 100.0 * ok / NULLIF(total, 0) AS pct FROM counts;\n"


@pytest.fixture
async def world(tmp_path: Path, empty_dsn: str) -> tuple[Path, dict, str]:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "CREATE TABLE counts (ok int, total int); INSERT INTO counts VALUES (18, 20)"
        )
    finally:
        await conn.close()
    (tmp_path / "rate.sql").write_text(RATE_SQL)
    (tmp_path / "flag").write_text("0\n")
    book = tmp_path / "runbook.toml"
    book.write_text(RUNBOOK)
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env.update(CUTOVER_DATABASE_URL=empty_dsn, USER="tester")
    return book, env, empty_dsn


def cutover(book: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


async def set_counts(dsn: str, ok: int, total: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE counts SET ok = $1, total = $2", ok, total)
    finally:
        await conn.close()


async def test_check_says_suspect_and_what_would_decide_it(world):
    book, env, _ = world
    done = cutover(book, env, "check")
    assert "◑ SUSPECT  success_below_95" in done.stdout
    assert "suspect: about 53 more total decide it: 18/20: 69.9–97.2 % straddles 95" in done.stdout
    assert done.returncode == 3  # it holds: WAIT, never PASS, never a rollback's FAIL

    report = json.loads(cutover(book, env, "check", "--json").stdout)
    trigger = report["triggers"][0]
    assert (trigger["state"], trigger["suspect"], trigger["fired"]) == ("suspect", True, False)
    assert trigger["decided_by"] == "about 53 more total decide it"
    assert trigger["more"] == 53
    assert report["verdict"] == "wait"


async def test_an_advance_is_held_while_a_trigger_is_suspect(world):
    book, env, dsn = world
    refused = cutover(book, env, "advance", "--confirm", "10")
    assert refused.returncode == 1
    assert "trigger success_below_95 (critical) is suspect: about 53 more total decide it" in (
        refused.stdout + refused.stderr
    )
    assert (book.parent / "flag").read_text() == "0\n"
    await set_counts(dsn, 990, 1000)  # decided: quiet, and the advance goes
    moved = cutover(book, env, "advance", "--confirm", "10")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert (book.parent / "flag").read_text() == "10\n"


@pytest.mark.parametrize(
    ("ok", "total", "state"),
    [
        (18, 20, "suspect"),  # 90 %: past 95 as a point, undecided as an interval
        (19, 20, "quiet"),  # 95 % is not below 95: not past it, however thin
        (2, 20, "fired"),  # 10 %, 3–30 %: the whole interval is below
        (0, 0, "quiet"),  # nothing to judge is no evidence of anything
    ],
)
def test_suspect_is_the_point_past_the_threshold_with_the_interval_across_it(
    tmp_path, ok, total, state
):
    (tmp_path / "rate.sql").write_text(RATE_SQL)
    book = load(_written(tmp_path))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    pct = 100 * ok / total if total else None
    result = QueryResult("rate", ("ok", "total", "pct"), ((ok, total, pct),), ran_at=at)
    report = judge_stage(book, book.stage("canary"), {"rate": result}, at)
    trigger = report.triggers[0]
    assert trigger.state == state
    assert trigger.holds_advance is (state == "suspect")
    alarms, _ = fold({}, report, at)
    expected = {"suspect": TriggerState.SUSPECT, "quiet": TriggerState.QUIET}.get(
        state, TriggerState.FIRED
    )
    assert alarms["success_below_95"].state is expected
    assert not alarms["success_below_95"].latched or state == "fired"  # never an alarm


def _written(tmp_path: Path) -> Path:
    (tmp_path / "flag").write_text("0\n")
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK)
    return path
