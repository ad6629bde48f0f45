"""The shipped runbook, every stage, on a Postgres built from the real migration (the four
full_pass_* columns added to an existing user_profiles, no pipeline_version) with the RLM's
endpoints served by the demo's fakes in the real service's shapes: /health with and without
processors_available, Render's memory as one series per instance, its logs as the v1
handler writes them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.judge.session import Session
from cutover.runbook.loader import load

REPO = Path(__file__).resolve().parents[1]
RENDER_KEY = "rnd_Real-schema-key-never-shown-3c9a"

# The real migration: four columns on an existing table, and nothing else.
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

# A day of v2 imports (only v2 writes these columns): 400 complete, one every 215 s (16 in
# the last hour), each in under 4 minutes; one system failure and a user's broken export.
REAL_DAY = """
INSERT INTO user_profiles (full_pass_status, full_pass_started_at, full_pass_completed_at)
SELECT 'complete', now() - make_interval(secs => 30 + 215 * i),
       now() - make_interval(secs => 215 * i - 200)
  FROM generate_series(1, 400) AS i;
INSERT INTO user_profiles (full_pass_status, full_pass_started_at, full_pass_completed_at,
                           full_pass_error)
VALUES ('failed', now() - interval '5 hours', now() - interval '4 hours 55 minutes',
        'RLM timeout after 301s'),
       ('failed', now() - interval '7 hours', now() - interval '7 hours',
        'Invalid export archive: missing conversations.json');
"""


@pytest.fixture
async def real_dsn(empty_dsn: str) -> str:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(REAL_SCHEMA)
        await conn.execute(REAL_DAY)
    finally:
        await conn.close()
    return empty_dsn


@pytest.fixture
def real_services() -> Iterator[dict]:
    with (
        RLMServer() as rlm,
        FakeRender(api_key=RENDER_KEY, logs=rlm.log_lines, instances=2) as render,
    ):
        yield {
            "env": {
                "RLM_URL": rlm.url,
                "RLM_LOCAL_URL": rlm.url,
                "RENDER_API_URL": render.url,
                "RENDER_API_KEY": RENDER_KEY,
                "RENDER_OWNER_ID": render.owner_id,
                "RENDER_RLM_SERVICE_ID": render.service_id,
            },
            "rlm": rlm,
            "render": render,
        }


@pytest.fixture
def book(tmp_path: Path) -> Path:
    shutil.copy(REPO / "runbook.toml", tmp_path / "runbook.toml")
    shutil.copytree(REPO / "queries", tmp_path / "queries")
    return tmp_path / "runbook.toml"


def check(book: Path, dsn: str, env: dict, stage: str) -> tuple[int, dict]:
    environ = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    environ.update(env, CUTOVER_DATABASE_URL=dsn)
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), "check", "--stage", stage,
         "--json"],
        capture_output=True, text=True, env=environ, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


STEADY = {
    "success": "pass",
    "v2_success": "wait",  # optional: lacks pipeline_version here, and does not count
    "no_stuck": "pass",
    "no_systemic_errors": "pass",
    "few_slow": "pass",
    "rlm_ready": "pass",
}
AGAINST_PREVIOUS = dict.fromkeys(("no_new_errors", "success_vs_baseline", "no_slowdown"), "wait")
EXPECTED = {
    "prerequisites": (0, {"migration_columns": "pass", "rlm_ready": "pass"}),
    "canary": (0, STEADY),
    # no exit snapshot of the stage before yet: those gates wait and say so
    "ramp": (3, {**STEADY, **AGAINST_PREVIOUS}),
    "full": (3, {**STEADY, **AGAINST_PREVIOUS}),
    "deprecation": (0, {"zero_v1_calls": "pass", "success": "pass", "no_stuck": "pass"}),
}
# Outside its stages a trigger is off: never fired, never holding anything.
OFF = {
    "prerequisites": {"success_below_95", "success_below_95_at_full", "traffic_drop"},
    "canary": {"success_below_95_at_full"},
    "ramp": {"success_below_95_at_full"},
    "full": {"success_below_95"},
    "deprecation": {"success_below_95"},
}


@pytest.mark.parametrize("stage", list(EXPECTED))
async def test_every_stage_of_the_shipped_runbook_on_the_real_schema(
    real_dsn, real_services, book, stage
):
    code, report = check(book, real_dsn, real_services["env"], stage)
    expected_code, expected_gates = EXPECTED[stage]
    assert {g["id"]: g["verdict"] for g in report["gates"]} == expected_gates
    assert all(g["counts"] for g in report["gates"] if g["id"] != "v2_success")
    states = {t["id"]: t["state"] for t in report["triggers"]}
    assert {t for t, s in states.items() if s == "off"} == OFF[stage]
    assert set(states.values()) <= {"quiet", "off"}, states  # nothing fired, unknown, suspect
    assert code == expected_code, report


async def test_the_rlm_is_ready_by_either_shape_of_health_and_not_without_processors(
    real_dsn, real_services, book
):
    rlm: RLMServer = real_services["rlm"]
    session = Session(load(book), {**real_services["env"], "CUTOVER_DATABASE_URL": real_dsn})

    async def ready() -> tuple[str, dict]:
        runner = session.runner()
        try:
            report, results = await session.check(runner, session.runbook.stage("prerequisites"))
        finally:
            await runner.aclose()
        gate = next(g for g in report.gates if g.id == "rlm_ready")
        return gate.verdict.value, results["rlm_ready"].first_row()

    # The version the cutover was written for: processors_available says it.
    assert await ready() == ("pass", {"ready": 1, "reports_processors": 1})
    rlm.processors_available = False
    assert await ready() == ("fail", {"ready": 0, "reports_processors": 1})
    # A later RLM: {"status": "ok", "service": "soulprint-rlm"}; status ok is all it says,
    # and the panel says which shape answered.
    rlm.health_shape = "later"
    assert await ready() == ("pass", {"ready": 1, "reports_processors": 0})
    probe = session.runbook.probes["rlm_health"]
    from cutover.sources.probes import run_probe

    result = await run_probe(probe, environ=session.environ)
    assert '✓ status is "ok"' in result.checks


async def test_memory_reads_the_busiest_instance_and_the_observed_share_both_records(
    real_dsn, real_services, book
):
    render: FakeRender = real_services["render"]
    env = real_services["env"]
    _, report = check(book, real_dsn, env, "canary")
    memory = next(t for t in report["triggers"] if t["id"] == "memory_high")
    assert (memory["fired"], memory["value"]) == (False, 640_000_000)
    # One instance climbs; Render answers one series per instance: the max is read.
    render.set_instance_memory(1, 1_950_000_000)
    code, report = check(book, real_dsn, env, "canary")
    memory = next(t for t in report["triggers"] if t["id"] == "memory_high")
    assert (memory["fired"], memory["value"]) == (True, 1_950_000_000)
    assert code == 1

    # v2 is rows; v1 is the line its handler logs. The last hour holds 16 v2 imports.
    async def routed() -> dict:
        session = Session(load(book), {**env, "CUTOVER_DATABASE_URL": real_dsn})
        runner = session.runner()
        try:
            results = await session.run_queries(runner, ["routed_share"])
        finally:
            await runner.aclose()
        return results["routed_share"].first_row()

    def call_v1(times: int) -> None:
        for i in range(times):
            body = {"user_id": f"u{i}", "storage_path": "a.json"}
            httpx.post(f"{env['RLM_URL']}/process-full", json=body).raise_for_status()

    call_v1(48)
    assert await routed() == {"v2_pct": 25, "imports": 64, "v2_imports": 16, "v1_calls": 48}
    # Past the 100 lines the logs API returns, the count is only a lower bound: no share.
    call_v1(60)
    capped = await routed()
    assert (capped["v2_pct"], capped["imports"], capped["v1_calls"]) == (None, None, 100)
