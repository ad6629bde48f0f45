"""`cutover check` on the shipped runbook against a real Postgres, one world per scenario:
the verdict of every gate and trigger, the exit code, and the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

import scenarios

REPO = Path(__file__).resolve().parents[1]


def cutover(
    *args: str,
    dsn: str | None = None,
    runbook: Path = REPO / "runbook.toml",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    if dsn:
        env["CUTOVER_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


load = scenarios.load_dsn


def check_json(dsn: str, stage: str = "canary") -> tuple[int, dict]:
    done = cutover("check", "--stage", stage, "--json", dsn=dsn)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def verdicts(report: dict) -> tuple[dict, dict]:
    return (
        {g["id"]: g["verdict"] for g in report["gates"]},
        {t["id"]: t["fired"] for t in report["triggers"]},
    )


async def test_healthy_traffic_passes_every_canary_gate_and_fires_nothing(soulprint_dsn):
    await load(soulprint_dsn, "healthy")
    code, report = check_json(soulprint_dsn)
    gates, fired = verdicts(report)
    assert gates == {"success": "pass", "no_stuck": "pass", "no_new_errors": "pass"}
    assert not any(fired.values())
    assert (code, report["verdict"], report["stage"]) == (0, "pass", "canary")
    success = report["gates"][0]
    assert success["op"] == ">=" and success["threshold"] == 95
    assert success["interval"] == [98.17, 99.46]  # 990 of 1,000 at 95 % confidence
    assert report["evaluated_at"].endswith("Z")


async def test_a_degraded_pipeline_fails_the_gates_and_fires_the_critical_trigger(soulprint_dsn):
    await load(soulprint_dsn, "degraded")
    code, report = check_json(soulprint_dsn)
    gates, fired = verdicts(report)
    assert gates["success"] == "fail"
    assert gates["no_new_errors"] == "fail"
    assert fired["success_below_95"] is True
    assert (code, report["verdict"]) == (1, "fail")
    trigger = next(t for t in report["triggers"] if t["id"] == "success_below_95")
    assert trigger["severity"] == "critical"
    assert trigger["interval"] == [85.06, 93.43]  # 180 of 200


async def test_too_little_data_waits_instead_of_passing(soulprint_dsn):
    await load(soulprint_dsn, "too_little_data")
    code, report = check_json(soulprint_dsn)
    gates, fired = verdicts(report)
    assert gates["success"] == "wait"  # 19/20 is 95 % raw, 76.4–99.1 % as an interval
    assert not fired["success_below_95"]
    assert (code, report["verdict"]) == (3, "wait")
    assert "76.4–99.1" in report["gates"][0]["reason"]


async def test_stuck_imports_fail_the_gate_and_a_burst_fires_its_trigger(soulprint_dsn):
    await load(soulprint_dsn, "stuck")
    code, report = check_json(soulprint_dsn)
    gates, fired = verdicts(report)
    assert gates["no_stuck"] == "fail"
    assert fired["stuck_burst"] is True
    assert code == 1


async def test_an_empty_window_waits_and_fires_nothing(soulprint_dsn):
    await load(soulprint_dsn, "empty")
    code, report = check_json(soulprint_dsn)
    gates, fired = verdicts(report)
    assert gates["success"] == "wait"
    assert not any(fired.values())
    assert code == 3


async def test_slow_imports_persisting_six_hours_fire_the_medium_trigger(soulprint_dsn):
    await load(soulprint_dsn, "slow")
    _, report = check_json(soulprint_dsn)
    _, fired = verdicts(report)
    assert fired["slow_persisting"] is True
    assert (
        next(t for t in report["triggers"] if t["id"] == "slow_persisting")["severity"] == "medium"
    )


async def test_a_missing_pipeline_version_column_is_named_not_a_crash(soulprint_dsn):
    await load(soulprint_dsn, "healthy")
    conn = await asyncpg.connect(soulprint_dsn)
    try:
        await conn.execute("ALTER TABLE user_profiles DROP COLUMN pipeline_version")
    finally:
        await conn.close()
    code, report = check_json(soulprint_dsn, stage="deprecation")
    gate = next(g for g in report["gates"] if g["id"] == "zero_v1_traffic")
    assert gate["verdict"] == "wait"
    assert "needs column pipeline_version" in gate["reason"]
    assert code == 3
    # the prerequisites gate counts the migration's columns and says it is not there
    code, report = check_json(soulprint_dsn, stage="prerequisites")
    assert report["gates"][0]["verdict"] == "fail"


def test_an_unreachable_database_exits_2_with_a_readable_error_and_no_secret(tmp_path):
    dsn = f"postgresql://cutover:hunter2secret@/nowhere?host={tmp_path}"
    done = cutover("check", dsn=dsn)
    assert done.returncode == 2
    assert "database unreachable" in done.stderr
    assert "hunter2secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_no_dsn_exits_2_naming_the_variable():
    done = cutover("check")
    assert done.returncode == 2
    assert "CUTOVER_DATABASE_URL" in done.stderr


async def test_check_never_imports_the_ui_toolkit(soulprint_dsn):
    # Only textual is checked at run time: httpx itself imports rich for its own CLI when
    # rich is installed. Our own modules' imports of rich are barred by the import contract.
    await load(soulprint_dsn, "healthy")
    code = (
        "import sys, cutover.cli as c\n"
        "rc = c.main(['--runbook', sys.argv[1], 'check', '--stage', 'canary'])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual']\n"
        "print('RC', rc, 'IMPORTED', bad)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env["CUTOVER_DATABASE_URL"] = soulprint_dsn
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "runbook.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    # a whole check ran (judged, printed, exit 0) and Textual never came in
    assert "RC 0 IMPORTED []" in done.stdout, done.stdout + done.stderr


GENERIC = """\
version = 1
title = "payments: old ledger → new ledger"

[database]
dsn_env = "LEDGER_DB"

[flag]
kind = "file"
path = "percent"

[queries.errors]
file = "errors.sql"
refresh = "10s"

[[stages]]
id = "dark"
percent = 0

  [[stages.gates]]
  id = "few_errors"
  query = "errors"
  column = "error_count"
  op = "<"
  value = 3

[[triggers]]
id = "error_storm"
query = "errors"
row_count = true
op = ">"
value = 0
severity = "high"
"""


async def test_check_works_for_any_runbook_and_database_that_follow_the_format(tmp_path, empty_dsn):
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "CREATE TABLE ledger_errors (id int); INSERT INTO ledger_errors VALUES (1), (2)"
        )
    finally:
        await conn.close()
    (tmp_path / "errors.sql").write_text(
        "-- Ledger errors\nSELECT count(*) AS error_count FROM ledger_errors;\n"
    )
    (tmp_path / "runbook.toml").write_text(GENERIC)
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env["LEDGER_DB"] = empty_dsn
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cutover.cli",
            "--runbook",
            str(tmp_path / "runbook.toml"),
            "check",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["stage"] == "dark"
    assert report["gates"][0]["verdict"] == "pass"
    assert report["gates"][0]["value"] == 2
    assert report["triggers"][0]["fired"] is True  # one row > 0
    assert done.returncode == 1  # a fired trigger makes the check fail


EXPECTED_ON_HEALTHY = {
    "prerequisites": (0, {"migration_columns": "pass"}),
    "canary": (0, {"success": "pass", "no_stuck": "pass", "no_new_errors": "pass"}),
    "ramp": (0, {"success": "pass", "no_stuck": "pass", "no_new_errors": "pass"}),
    "full": (0, {"success": "pass", "no_stuck": "pass", "no_new_errors": "pass"}),
    # healthy traffic is 90 % v1: v1 cannot be retired yet
    "deprecation": (1, {"zero_v1_traffic": "fail", "success": "pass", "no_stuck": "pass"}),
}


@pytest.mark.parametrize("stage", list(EXPECTED_ON_HEALTHY))
async def test_every_stage_of_the_shipped_runbook_is_judged_on_healthy_traffic(
    soulprint_dsn, stage
):
    await load(soulprint_dsn, "healthy")
    code, report = check_json(soulprint_dsn, stage=stage)
    expected_code, expected_gates = EXPECTED_ON_HEALTHY[stage]
    gates, fired = verdicts(report)
    assert (report["stage"], gates) == (stage, expected_gates)
    assert not any(fired.values())
    assert code == expected_code
