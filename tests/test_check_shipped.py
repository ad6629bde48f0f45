"""`cutover check` on the shipped runbook against a real Postgres and the loopback RLM and
Render, one world per scenario: the verdict of every gate and trigger, the exit code, and
the JSON contract. Each test runs a copy of the runbook, so its journal and evidence are
its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

import scenarios
from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.record.evidence import TRIGGER, Evaluation, EvidenceStore, evidence_path
from cutover.runbook.loader import load as load_runbook

REPO = Path(__file__).resolve().parents[1]
RENDER_KEY = "rnd_Render-key-that-must-never-show-5d1e"

# The real migration: it adds these four columns to an existing user_profiles, and no
# pipeline_version.
REAL_SCHEMA = """
CREATE TABLE user_profiles (
    user_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE user_profiles
    ADD COLUMN full_pass_status text DEFAULT 'pending'
        CHECK (full_pass_status IN ('pending', 'processing', 'complete', 'failed')),
    ADD COLUMN full_pass_started_at timestamptz,
    ADD COLUMN full_pass_completed_at timestamptz,
    ADD COLUMN full_pass_error text;
"""


@pytest.fixture
def services() -> Iterator[dict[str, str]]:
    """The fake RLM and Render the shipped runbook's probes and http queries read, and
    the environment naming them."""
    with RLMServer() as rlm, FakeRender(api_key=RENDER_KEY, logs=rlm.log_lines) as render:
        yield {
            "RLM_URL": rlm.url,
            "RLM_LOCAL_URL": rlm.url,
            "RENDER_API_URL": render.url,
            "RENDER_API_KEY": RENDER_KEY,
            "RENDER_OWNER_ID": render.owner_id,
            "RENDER_RLM_SERVICE_ID": render.service_id,
            "_render": render,  # type: ignore[dict-item]
            "_rlm": rlm,  # type: ignore[dict-item]
        }


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A copy of the shipped runbook and its queries: a journal and evidence of its own."""
    shutil.copy(REPO / "runbook.toml", tmp_path / "runbook.toml")
    shutil.copytree(REPO / "queries", tmp_path / "queries")
    return tmp_path / "runbook.toml"


def cutover(
    *args: str,
    dsn: str | None = None,
    runbook: Path = REPO / "runbook.toml",
    cwd: Path | None = None,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    environ.update({k: v for k, v in (env or {}).items() if not k.startswith("_")})
    if dsn:
        environ["CUTOVER_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=60,
    )


load = scenarios.load_dsn


def check_json(dsn: str, stage: str, runbook: Path, env: dict) -> tuple[int, dict]:
    done = cutover("check", "--stage", stage, "--json", dsn=dsn, runbook=runbook, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def verdicts(report: dict) -> tuple[dict, dict]:
    return (
        {g["id"]: g["verdict"] for g in report["gates"]},
        {t["id"]: t["fired"] for t in report["triggers"]},
    )


def trigger(report: dict, trigger_id: str) -> dict:
    return next(t for t in report["triggers"] if t["id"] == trigger_id)


def gate(report: dict, gate_id: str) -> dict:
    return next(g for g in report["gates"] if g["id"] == gate_id)


CANARY_GATES = (
    "success",
    "v2_success",
    "no_stuck",
    "no_systemic_errors",
    "few_slow",
    "rlm_ready",
)
# Ramp and full also compare with the stage before's exit snapshot: with none saved yet
# they wait (never pass) and say so.
BASELINE_GATES = ("no_new_errors", "success_vs_baseline", "no_slowdown")


async def test_healthy_traffic_passes_every_canary_gate_and_fires_nothing(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "healthy")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    gates, fired = verdicts(report)
    assert gates == dict.fromkeys(CANARY_GATES, "pass")
    assert not any(fired.values()), fired
    assert (code, report["verdict"], report["stage"]) == (0, "pass", "canary")
    success = report["gates"][0]
    assert success["op"] == ">=" and success["threshold"] == 95
    assert success["interval"] == [98.17, 99.46]  # 990 of 1,000 at 95 % confidence
    assert report["evaluated_at"].endswith("Z")


async def test_a_degraded_pipeline_fails_the_gates_and_fires_the_critical_trigger(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "degraded")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    gates, fired = verdicts(report)
    assert gates["success"] == "fail"
    assert fired["success_below_95"] is True
    assert (code, report["verdict"]) == (1, "fail")
    success = trigger(report, "success_below_95")
    assert success["severity"] == "critical"
    assert success["interval"] == [85.06, 93.43]  # 180 of 200


async def test_one_error_pattern_hitting_many_users_is_systemic(soulprint_dsn, book, services):
    # The v2 chunker bug hits 10 of the 200 users judged: 5 %, 2.7–9.0 % as an interval.
    await load(soulprint_dsn, "degraded")
    _, report = check_json(soulprint_dsn, "canary", book, services)
    systemic = gate(report, "no_systemic_errors")
    assert systemic["verdict"] == "fail"
    assert systemic["interval"] == [2.74, 8.96]
    assert "10/200" in systemic["reason"]


async def test_known_errors_spread_thin_over_many_users_are_not_systemic(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "healthy")
    _, report = check_json(soulprint_dsn, "canary", book, services)
    systemic = gate(report, "no_systemic_errors")
    assert systemic["verdict"] == "pass"
    assert "4/1,000" in systemic["reason"]  # the commonest known pattern: 4 users


async def test_a_pattern_recurring_for_30_hours_is_still_counted(soulprint_dsn, book, services):
    # "First seen in the last 24 h" would miss it; the users it hits do not.
    await load(soulprint_dsn, "healthy")
    conn = await asyncpg.connect(soulprint_dsn)
    try:
        await conn.execute(
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
            " full_pass_completed_at, full_pass_error, pipeline_version)"
            " SELECT 'failed', now() - make_interval(mins => 30 * i),"
            "        now() - make_interval(mins => 30 * i - 2),"
            "        'v2 chunker: KeyError in chunk ' || i, 'v2'"
            "   FROM generate_series(1, 60) AS i"
        )
    finally:
        await conn.close()
    _, report = check_json(soulprint_dsn, "canary", book, services)
    # two users an hour for 30 hours: 47 of the 1,047 users judged in the last 24 h
    systemic = gate(report, "no_systemic_errors")
    assert systemic["verdict"] == "fail"
    assert "47/1,047" in systemic["reason"]


async def test_too_little_data_waits_instead_of_passing(soulprint_dsn, book, services):
    await load(soulprint_dsn, "too_little_data")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    gates, fired = verdicts(report)
    assert gates["success"] == "wait"  # 19/20 is 95 % raw, 76.4–99.1 % as an interval
    assert not fired["success_below_95"]
    assert (code, report["verdict"]) == (3, "wait")
    assert "76.4–99.1" in report["gates"][0]["reason"]


async def test_stuck_imports_fail_the_gate_and_a_burst_fires_its_trigger(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "stuck")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    gates, fired = verdicts(report)
    assert gates["no_stuck"] == "fail"
    assert fired["stuck_burst"] is True
    assert code == 1


async def test_an_empty_window_waits_and_fires_nothing(soulprint_dsn, book, services):
    await load(soulprint_dsn, "empty")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    gates, fired = verdicts(report)
    assert gates["success"] == "wait"
    assert not any(fired.values())
    assert code == 3


async def test_slow_imports_for_an_hour_extend_monitoring_and_do_not_roll_back(
    soulprint_dsn, book, services
):
    # "> 30 min imports: extend monitoring": fired as medium, the stage holds.
    await load(soulprint_dsn, "slow")
    code, report = check_json(soulprint_dsn, "canary", book, services)
    slow = trigger(report, "slow_persisting")
    assert (slow["fired"], slow["severity"], slow["escalated_from"]) == (True, "medium", None)
    assert slow["value"] == 2  # two imports over 30 min finished in the last hour
    assert code == 1


async def test_slow_imports_persisting_six_hours_escalate_to_a_rollback(
    soulprint_dsn, book, services
):
    # The evidence says the condition has held for 6 h 30 min without a quiet evaluation:
    # "if it persists > 6 h, rollback".
    await load(soulprint_dsn, "slow")
    book_ = load_runbook(book)
    store = EvidenceStore(evidence_path(book_.journal_path), by="test", break_s=3600)
    now = datetime.now(UTC)
    store.record(
        Evaluation(TRIGGER, "slow_persisting", "canary", "fired", 2, None, "2 > 0", "", at)
        for at in (now - timedelta(minutes=m) for m in range(390, 0, -30))
    )
    store.flush()
    code, report = check_json(soulprint_dsn, "canary", book, services)
    slow = trigger(report, "slow_persisting")
    assert (slow["fired"], slow["severity"], slow["escalated_from"]) == (True, "critical", "medium")
    assert code == 1
    text = cutover("check", "--stage", "canary", dsn=soulprint_dsn, runbook=book, env=services)
    assert "escalated from medium (held 6h 30m)" in text.stdout


async def test_render_memory_past_the_limit_fires_the_memory_trigger(soulprint_dsn, book, services):
    await load(soulprint_dsn, "healthy")
    _, report = check_json(soulprint_dsn, "canary", book, services)
    assert trigger(report, "memory_high")["fired"] is False
    services["_render"].memory_bytes = 1_950_000_000
    code, report = check_json(soulprint_dsn, "canary", book, services)
    memory = trigger(report, "memory_high")
    assert (memory["fired"], memory["severity"], memory["value"]) == (True, "critical", 1.95e9)
    assert code == 1


async def test_memory_unknown_without_render_settings_holds_and_names_the_variable(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "healthy")
    env = {k: v for k, v in services.items() if k != "RENDER_RLM_SERVICE_ID"}
    code, report = check_json(soulprint_dsn, "canary", book, env)
    memory = trigger(report, "memory_high")
    assert memory["fired"] is None  # unknown, never quiet
    assert "RENDER_RLM_SERVICE_ID is not set" in memory["reason"]
    assert code == 3


async def test_a_wrong_render_key_is_a_readable_401_and_the_key_never_shows(
    soulprint_dsn, book, services
):
    await load(soulprint_dsn, "healthy")
    env = {**services, "RENDER_API_KEY": "rnd_wrong-key-also-secret-9f8e"}
    done = cutover("check", "--stage", "canary", dsn=soulprint_dsn, runbook=book, env=env)
    assert "HTTP 401" in done.stdout and "Unauthorized" in done.stdout
    assert "rnd_wrong-key-also-secret-9f8e" not in done.stdout + done.stderr
    journal = cutover("evidence", "--json", runbook=book, env=env)
    assert "rnd_wrong" not in journal.stdout + journal.stderr


async def test_a_v1_call_in_the_rlm_logs_fails_the_deprecation_gate(soulprint_dsn, book, services):
    await load(soulprint_dsn, "healthy")
    _, report = check_json(soulprint_dsn, "deprecation", book, services)
    assert gate(report, "zero_v1_calls")["verdict"] == "pass"
    # a client still calls v1: the handler logs its deprecation line, Render serves it
    httpx.post(
        f"{services['RLM_URL']}/process-full", json={"user_id": "u1", "storage_path": "a.json"}
    ).raise_for_status()
    _, report = check_json(soulprint_dsn, "deprecation", book, services)
    zero = gate(report, "zero_v1_calls")
    assert zero["verdict"] == "fail"
    assert zero["value"] == 1


# --- the real schema: the four migration columns, no pipeline_version ---


@pytest.fixture
async def real_dsn(empty_dsn: str) -> str:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(REAL_SCHEMA)
        # v2 imports only: the v1 path never writes these columns.
        await conn.execute(
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
            " full_pass_completed_at)"
            " SELECT 'complete', now() - make_interval(mins => 20 + i * 7),"
            "        now() - make_interval(mins => 14 + i * 7)"
            "   FROM generate_series(1, 40) AS i"
        )
    finally:
        await conn.close()
    return empty_dsn


def test_the_shipped_runbook_validates_on_the_real_schema_naming_what_waits(
    real_dsn, book, services
):
    done = cutover("validate", dsn=real_dsn, runbook=book, env=services)
    assert done.returncode == 0, done.stderr
    assert "but 3, which wait for a column they need" in done.stdout
    for query_id in ("v1_vs_v2", "v1_traffic", "v2_share"):
        assert (
            f"query {query_id!r} will wait: needs column pipeline_version; add it to see the "
            "v1/v2 split" in done.stderr
        )


def test_the_prerequisites_pass_on_the_real_schema(real_dsn, book, services):
    code, report = check_json(real_dsn, "prerequisites", book, services)
    gates, fired = verdicts(report)
    assert gates == {"migration_columns": "pass", "rlm_ready": "pass"}
    assert not any(fired.values()), report["triggers"]
    assert (code, report["verdict"]) == (0, "pass")
    assert gate(report, "migration_columns")["value"] == 4


def test_the_v2_row_gate_does_not_hold_the_canary_on_the_real_schema(real_dsn, book, services):
    # Optional: its query lacks pipeline_version there, so it says so and does not count;
    # the overall rate (every row is v2's on the real service) is what gates.
    _, report = check_json(real_dsn, "canary", book, services)
    v2 = gate(report, "v2_success")
    assert v2["verdict"] == "wait"
    assert "needs column pipeline_version" in v2["reason"]
    assert v2["counts"] is False
    assert all(g["counts"] for g in report["gates"] if g["id"] != "v2_success")


def test_the_observed_share_is_seen_on_the_real_schema_from_rows_and_log_lines(
    real_dsn, book, services
):
    # 5 v2 imports (rows) in the last hour; v1 leaves only log lines: 45 calls of it.
    for i in range(45):
        httpx.post(
            f"{services['RLM_URL']}/process-full",
            json={"user_id": f"u{i}", "storage_path": "a.json"},
        ).raise_for_status()
    done = cutover("status", "--json", dsn=real_dsn, runbook=book, env=services)
    status = json.loads(done.stdout)
    assert status["percent"]["observed"] == 10
    assert status["observed"]["detail"].startswith("10 % (routed_share.v2_pct; imports 50")


async def test_without_the_migration_the_prerequisites_fail_naming_the_columns(
    empty_dsn, book, services
):
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute("CREATE TABLE user_profiles (user_id uuid PRIMARY KEY)")
    finally:
        await conn.close()
    code, report = check_json(empty_dsn, "prerequisites", book, services)
    migration = gate(report, "migration_columns")
    assert (migration["verdict"], migration["value"]) == ("fail", 0)
    assert code == 1


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


async def test_check_never_imports_the_ui_toolkit(soulprint_dsn, book, services):
    # Only textual is checked at run time: httpx itself imports rich for its own CLI when
    # rich is installed. Our own modules' imports of rich are barred by the import contract.
    await load(soulprint_dsn, "healthy")
    code = (
        "import sys, cutover.cli.main as c\n"
        "rc = c.main(['--runbook', sys.argv[1], 'check', '--stage', 'canary'])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual']\n"
        "print('RC', rc, 'IMPORTED', bad)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env.update({k: v for k, v in services.items() if not k.startswith("_")})
    env["CUTOVER_DATABASE_URL"] = soulprint_dsn
    done = subprocess.run(
        [sys.executable, "-c", code, str(book)],
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
    "prerequisites": (0, {"migration_columns": "pass", "rlm_ready": "pass"}),
    "canary": (0, dict.fromkeys(CANARY_GATES, "pass")),
    "ramp": (3, {**dict.fromkeys(CANARY_GATES, "pass"), **dict.fromkeys(BASELINE_GATES, "wait")}),
    "full": (3, {**dict.fromkeys(CANARY_GATES, "pass"), **dict.fromkeys(BASELINE_GATES, "wait")}),
    # nothing called v1 in the last hour, by the RLM's logs
    "deprecation": (0, {"zero_v1_calls": "pass", "success": "pass", "no_stuck": "pass"}),
}


@pytest.mark.parametrize("stage", list(EXPECTED_ON_HEALTHY))
async def test_every_stage_of_the_shipped_runbook_is_judged_on_healthy_traffic(
    soulprint_dsn, book, services, stage
):
    await load(soulprint_dsn, "healthy")
    code, report = check_json(soulprint_dsn, stage, book, services)
    expected_code, expected_gates = EXPECTED_ON_HEALTHY[stage]
    gates, fired = verdicts(report)
    assert (report["stage"], gates) == (stage, expected_gates)
    assert not any(fired.values())
    assert code == expected_code
