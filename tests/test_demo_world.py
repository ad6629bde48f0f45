"""The demo world, with its real parts: embedded Postgres, the loopback Vercel and RLM
servers, the traffic simulator and the control surface."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from cutover.demo.database import pgdata_for
from cutover.demo.runbook_copy import NotAnOriginal, scale_hold, write_demo_runbook
from cutover.demo.traffic import Knobs
from cutover.demo.world import CONTROL_URL_ENV, World
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.runbook.loader import load
from cutover.sources.probes import run_probe

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = REPO / "runbook.toml"
ENV_NAMES = (
    "CUTOVER_DATABASE_URL",
    "VERCEL_API_URL",
    "VERCEL_TOKEN",
    "RLM_URL",
    "RLM_LOCAL_URL",
    "RENDER_API_URL",
    "RENDER_API_KEY",
    "RENDER_OWNER_ID",
    "RENDER_RLM_SERVICE_ID",
    "CUTOVER_RUNBOOK",
    CONTROL_URL_ENV,
)
# A small past keeps each world's start near a second; tests turn the live rate up.
BACKFILL_RATE = 6.0
LIVE_RATE = 1200.0
# 600 simulated minutes a minute: a 3–25 min import is in flight 0.3–2.5 s.
TIME_SCALE = 600.0


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder outside pytest's basetemp. Postgres runs as another user when the tests run
    as root, and any pytest session starting meanwhile resets /tmp/pytest-of-<user> to 0700,
    locking that user out of a pgdata inside it mid-run."""
    with tempfile.TemporaryDirectory(prefix="cutover-demo-test-", ignore_cleanup_errors=True) as d:
        yield Path(d)


@pytest.fixture
def world(scratch: Path) -> Iterator[World]:
    w = World(
        scratch / "demo",
        runbook=RUNBOOK,
        rate=BACKFILL_RATE,
        build_seconds=0.3,
        knobs=Knobs(time_scale=TIME_SCALE),
        seed=11,
    )
    with w:
        yield w


# ------------------------------------------------------------------------------ helpers


def postgres_processes(pgdata: Path) -> list[int]:
    """Live (not zombie) processes whose command line names this pgdata."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(pgdata) in cmdline and "postgres" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return True
    return False


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def vercel_client(world: World) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=world.environ["VERCEL_API_URL"],
        headers={"Authorization": f"Bearer {world.environ['VERCEL_TOKEN']}"},
        timeout=5,
    )


async def patch_percent(api: httpx.AsyncClient, value: str) -> None:
    """Edit the env var as the dashboard (or cutover) does: no redeploy."""
    envs = (await api.get("/v10/projects/soulprint-landing/env")).raise_for_status().json()
    (env,) = [e for e in envs["envs"] if e["key"] == "V2_ROLLOUT_PERCENT"]
    r = await api.patch(f"/v9/projects/soulprint-landing/env/{env['id']}", json={"value": value})
    r.raise_for_status()


async def redeploy(api: httpx.AsyncClient) -> datetime:
    """Redeploy the live production build and wait for READY; returns when it was seen."""
    listed = await api.get(
        "/v6/deployments",
        params={
            "projectId": "soulprint-landing",
            "target": "production",
            "state": "READY",
            "limit": 1,
        },
    )
    (live,) = listed.raise_for_status().json()["deployments"]
    created = await api.post(
        "/v13/deployments",
        params={"forceNew": 1},
        json={
            "deploymentId": live["uid"],
            "name": "soulprint-landing",
            "target": "production",
            "meta": {"action": "redeploy"},
        },
    )
    uid = created.raise_for_status().json()["id"]
    for _ in range(100):
        state = (await api.get(f"/v13/deployments/{uid}")).raise_for_status().json()["readyState"]
        if state == "READY":
            return datetime.now(UTC)
        assert state in ("QUEUED", "BUILDING")
        await asyncio.sleep(0.05)
    raise AssertionError("the redeploy never turned READY")


async def in_flight_started_after(dsn: str, since: datetime) -> dict[str, int]:
    # In-flight rows keep their arrival time as started_at (finished ones are back-dated),
    # so they say exactly which pipeline each import arriving after `since` was sent to.
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pipeline_version, count(*) AS n FROM user_profiles"
            " WHERE full_pass_status = 'processing' AND full_pass_started_at > $1"
            " GROUP BY 1",
            since,
        )
    finally:
        await conn.close()
    return {r["pipeline_version"]: r["n"] for r in rows}


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


# -------------------------------------------------------------------------------- tests


def test_the_world_stops_leaving_no_postgres_and_no_open_port(world: World) -> None:
    pgdata = world.database.pgdata
    pid = world.database.pid
    urls = [world.environ[n] for n in ("VERCEL_API_URL", "RLM_URL", CONTROL_URL_ENV)]
    assert pid is not None and pid in postgres_processes(pgdata)
    assert not any(port_is_closed(u) for u in urls)

    world.stop()

    assert wait_until(lambda: not postgres_processes(pgdata), timeout=5)
    assert not pgdata.exists()
    # Waited for, as the database is: on a loaded machine a server thread may still be
    # letting go of its socket as stop() returns (one CI run found a port still answering).
    assert wait_until(lambda: all(port_is_closed(u) for u in urls), timeout=5)
    assert not world.env_file.exists(), "a demo.env naming a dead world would mislead"
    world.stop()  # idempotent: the fixture (and atexit) call it again


def test_demo_env_names_every_variable_and_a_shell_can_source_it(world: World) -> None:
    assert world.env_file == world.dir.parent / "demo.env"
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o600  # it holds the token
    assert set(world.environ) == set(ENV_NAMES)
    echoed = subprocess.run(
        [
            "bash",
            "-c",
            'source "$1" && printf "%s\\n" ' + " ".join(f'"${n}"' for n in ENV_NAMES),
            "bash",
            str(world.env_file),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.splitlines()
    assert echoed == [world.environ[n] for n in ENV_NAMES]
    assert Path(world.environ["CUTOVER_RUNBOOK"]) == world.dir / "runbook.toml"


async def test_the_backfill_gives_every_shipped_query_data_at_once(world: World) -> None:
    session = Session(load(world.environ["CUTOVER_RUNBOOK"]), world.environ)
    runner = session.runner()
    try:
        results = await session.run_queries(runner, list(session.runbook.queries))
        canary = next(s for s in session.runbook.stages if s.id == "canary")
        report, _ = await session.check(runner, canary)
    finally:
        await runner.aclose()

    assert all(r.ok for r in results.values()), {q: r.error for q, r in results.items()}
    success = results["success_rate"].first_row()
    assert success["total_imports"] > 0
    assert success["success_rate_pct"] >= 97  # ~99 % before v2 exists
    empty_when_healthy = {"stuck_imports", "new_errors", "v1_calls"}
    for qid, result in results.items():
        assert bool(result.rows) != (qid in empty_when_healthy), qid
    assert results["v1_traffic"].first_row()["v1_imports_7d"] > 0
    assert results["v2_share"].first_row()["v2_pct"] == 0
    assert len([r for r in results["duration_histogram"].rows if r[-1]]) >= 3
    # The world starts healthy: the canary's gates pass on the past alone, nothing fired;
    # only v2's own row waits, since no import has gone to v2 before the canary.
    verdicts = {g.id: g.verdict for g in report.gates}
    assert verdicts.pop("v2_success") is Verdict.WAIT
    assert set(verdicts.values()) == {Verdict.PASS}, report
    assert not report.fired() and not report.unknown()


async def test_traffic_follows_the_live_deployment_not_the_stored_value(world: World) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    world.traffic.set_knobs(rate=LIVE_RATE)
    async with vercel_client(world) as api:
        patched_at = datetime.now(UTC)
        await patch_percent(api, "100")
        await asyncio.sleep(1.5)
        # Stored 100, live deployment still built with 0: as on Vercel, nothing moves.
        assert world.vercel.env_value("V2_ROLLOUT_PERCENT") == "100"
        after_patch = await in_flight_started_after(dsn, patched_at)
        assert after_patch.get("v1", 0) >= 5 and after_patch.get("v2", 0) == 0

        ready_at = await redeploy(api)
        await asyncio.sleep(1.5)
        after_ready = await in_flight_started_after(dsn, ready_at + timedelta(seconds=0.3))
        assert after_ready.get("v2", 0) >= 5 and after_ready.get("v1", 0) == 0

        # Rollback: back to 0 and redeployed, and new imports are v1 again.
        await patch_percent(api, "0")
        rolled_back_at = await redeploy(api)
        await asyncio.sleep(1.5)
        after_rollback = await in_flight_started_after(dsn, rolled_back_at + timedelta(seconds=0.3))
        assert after_rollback.get("v1", 0) >= 5 and after_rollback.get("v2", 0) == 0


async def test_a_knob_change_makes_recent_v2_imports_fail(world: World) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    world.traffic.set_knobs(rate=LIVE_RATE)
    async with vercel_client(world) as api:
        await patch_percent(api, "100")
        await redeploy(api)
    async with httpx.AsyncClient(base_url=world.environ[CONTROL_URL_ENV]) as control:
        r = await control.post("/knobs", json={"v2_failure_rate": 1})
        assert r.status_code == 200 and r.json()["knobs"]["v2_failure_rate"] == 1
        bad = await control.post("/knobs", json={"v2_failure_rate": 3})
        assert bad.status_code == 400 and "between 0 and 1" in bad.json()["error"]
    changed_at = datetime.now(UTC) + timedelta(seconds=0.3)
    await asyncio.sleep(3.0)  # the longest import is in flight 2.5 s

    outcomes = await fetch(
        dsn,
        "SELECT full_pass_status, count(*) AS n FROM user_profiles"
        " WHERE pipeline_version = 'v2' AND full_pass_completed_at > $1 GROUP BY 1",
        changed_at,
    )
    assert {r["full_pass_status"]: r["n"] for r in outcomes}.keys() == {"failed"}
    assert sum(r["n"] for r in outcomes) >= 10
    # v2's own bug shows as a pattern v1 never had, so the new-error gate turns red.
    book = load(world.environ["CUTOVER_RUNBOOK"])
    new = await fetch(dsn, book.queries["new_errors"].sql)
    assert any("v2 chunker" in r["error_pattern"] for r in new)


async def test_a_second_shell_can_remove_v1_so_the_last_stages_probe_passes(
    world: World,
) -> None:
    book = load(world.environ["CUTOVER_RUNBOOK"])
    env = {**os.environ, **world.environ}
    removed = book.probes["v1_removed"]
    assert not (await run_probe(removed, environ=env)).passed  # v1 still answers
    async with httpx.AsyncClient(base_url=world.environ[CONTROL_URL_ENV]) as control:
        bad = await control.post("/rlm", json={"v1_removed": "yes"})
        assert bad.status_code == 400 and "v1_removed (bool)" in bad.json()["error"]
        r = await control.post("/rlm", json={"v1_removed": True})
        assert r.status_code == 200 and r.json()["v1_removed"] is True
    assert (await run_probe(removed, environ=env)).passed  # /process-full now answers 404


async def test_traffic_goes_on_after_the_database_restarts(world: World) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    world.traffic.set_knobs(rate=LIVE_RATE)
    old_pid = world.database.pid
    await asyncio.to_thread(world.database.restart, 1.0)
    back_at = datetime.now(UTC)
    assert world.database.pid != old_pid

    async def written_since() -> int:
        rows = await fetch(
            dsn, "SELECT count(*) AS n FROM user_profiles WHERE full_pass_started_at > $1", back_at
        )
        return rows[0]["n"]

    for _ in range(50):
        if await written_since() >= 10:
            break
        await asyncio.sleep(0.2)
    assert await written_since() >= 10
    assert world.traffic.last_error is None


def test_the_demo_runbook_copy_loads_with_holds_scaled(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    copy = load(write_demo_runbook(RUNBOOK, demo_dir))
    original = load(RUNBOOK)

    assert copy.title == original.title + " — DEMO (time ÷3600)"
    assert copy.journal_path == (demo_dir / "journal.jsonl").resolve()
    assert copy.journal_path != original.journal_path
    for demo_stage, stage in zip(copy.stages, original.stages, strict=True):
        expected = 0 if stage.hold_s == 0 else max(5, round(stage.hold_s / 3600))
        assert demo_stage.hold_s == expected
    assert any(s.hold_s >= 86400 for s in original.stages)  # there was something to scale
    for qid, query in copy.queries.items():
        if query.kind == "http":
            assert query.url == original.queries[qid].url
            continue
        if query.kind == "derived":
            assert query.describe() == original.queries[qid].describe()
            continue
        assert query.file == original.queries[qid].file  # the original .sql files
        assert query.sql == original.queries[qid].sql
    assert scale_hold("1h") == "5s" and scale_hold("0s") == "0s"


def test_each_demo_starts_a_fresh_journal_unless_asked_to_keep(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    journal = demo_dir / "journal.jsonl"
    write_demo_runbook(RUNBOOK, demo_dir)
    journal.write_text('{"seq": 1}\n')
    write_demo_runbook(RUNBOOK, demo_dir, keep=True)
    assert journal.exists()
    write_demo_runbook(RUNBOOK, demo_dir)
    assert not journal.exists()
    # A shell that sourced demo.env points CUTOVER_RUNBOOK at the copy: never re-scale it.
    with pytest.raises(NotAnOriginal):
        write_demo_runbook(demo_dir / "runbook.toml", tmp_path / "again")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_cutover_demo_headless_stops_the_world_on_a_signal(scratch: Path, sig: int) -> None:
    demo_dir = scratch / "demo"
    env_file = scratch / "demo.env"
    # As a terminal's foreground job gets Ctrl-C: SIGINT neither ignored nor blocked, which a
    # child inherits from whoever started it (in a full CI run the demo kept sleeping through
    # it, its main thread never interrupted, while alone it always stopped).
    as_foreground = (
        "import signal; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            as_foreground + "from cutover.cli.main import main; raise SystemExit(main())",
            "--runbook",
            str(RUNBOOK),
            "demo",
            "--headless",
            "--rate",
            "2",
            "--dir",
            str(demo_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=scratch,
        # A hang says where: SIGABRT makes every thread's stack go to stderr.
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        assert wait_until(lambda: env_file.exists() or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, proc.stderr.read()
        pgdata = pgdata_for(demo_dir)
        assert postgres_processes(pgdata)
        proc.send_signal(sig)
        # Stopping waits, each bounded, for the watcher's evaluation in flight (15 s), the
        # traffic thread (10 s) and each loopback server (5 s): on a loaded machine (CI's
        # four workers on two cores) it can take longer than 20 s without hanging.
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=20)
            raise AssertionError(f"the demo did not stop; its threads:\n{err[-6000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "nothing is left running" in err
    # What --headless prints: the exports demo.env holds, then one line on how to use them.
    *exports, how_to = out.splitlines()
    assert [line.split("=")[0] for line in exports] == [f"export {n}" for n in ENV_NAMES]
    assert "source" in how_to and CONTROL_URL_ENV in how_to
    assert wait_until(lambda: not postgres_processes(pgdata), timeout=5)
    assert not pgdata.parent.exists() and not env_file.exists()


async def test_breaking_the_memory_knob_fires_the_runbooks_memory_trigger(world: World) -> None:
    session = Session(load(world.environ["CUTOVER_RUNBOOK"]), world.environ)
    canary = session.runbook.stage("canary")

    async def memory_fired() -> bool | None:
        runner = session.runner()
        try:
            report, _ = await session.check(runner, canary, record_as=None)
        finally:
            await runner.aclose()
        return next(t for t in report.triggers if t.id == "memory_high").fired

    assert await memory_fired() is False
    async with httpx.AsyncClient(base_url=world.environ[CONTROL_URL_ENV]) as control:
        bad = await control.post("/render", json={"memory_bytes": "lots"})
        assert bad.status_code == 400 and "number of bytes" in bad.json()["error"]
        r = await control.post("/render", json={"memory_bytes": 1_950_000_000})
        assert r.status_code == 200 and r.json()["memory_bytes"] == 1.95e9
    assert await memory_fired() is True


async def test_the_demo_s_v1_deprecation_probe_posts_a_test_import_to_its_rlm(
    world: World,
) -> None:
    book = load(world.environ["CUTOVER_RUNBOOK"])
    result = await run_probe(book.probes["v1_deprecation"], environ=world.environ)
    assert result.passed, result.checks
    assert "! Deprecation: true is the legacy form; RFC 9745 wants @<epoch>" in result.checks
    assert world.rlm.hits("/process-full", "POST") == 1


async def test_the_demo_database_survives_its_folders_being_tightened_as_root(world: World):
    # Run as root, embedded Postgres runs as a user of its own. Once, tightening the demo
    # folder to 0700 (a digest's seen marker, the journal's folder) took pgdata from it and
    # the server PANICked minutes later ("could not open file …/global/pg_control").
    import asyncpg

    from cutover.base.private import private_dir

    assert not world.database.pgdata.is_relative_to(world.dir)
    private_dir(world.dir)
    private_dir(world.dir.parent)
    os.chmod(world.dir, 0o700)
    conn = await asyncpg.connect(world.environ["CUTOVER_DATABASE_URL"])
    try:
        await conn.execute("CHECKPOINT")  # reads and writes global/pg_control
        assert await conn.fetchval("SELECT count(*) FROM user_profiles") > 0
    finally:
        await conn.close()
