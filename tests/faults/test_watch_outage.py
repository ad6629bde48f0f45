"""The database goes away under the watcher, or is away when it starts: the watcher keeps
running, says so once and once again when it is back, records the outage as evidence
(WAIT, unknown), and does not say the outage's side effects gate by gate afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cutover.record.evidence import read_evidence
from watch_world import Core, Door, metric_database, metric_runbook


@pytest.fixture
async def door(pg_server: str):
    d = Door(pg_server)
    d.open()
    yield d
    d.shut()


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


def through(door: Door, dsn: str) -> str:
    return door.dsn(urlsplit(dsn).path.lstrip("/"))


async def test_an_outage_is_said_once_and_its_waits_are_not_said_gate_by_gate_after_it(
    tmp_path: Path, metric_dsn: str, door: Door
) -> None:
    core = Core(metric_runbook(tmp_path), through(door, metric_dsn))
    await core.start()
    await core.advance_by_alice()
    await core.cycles(4)
    before = len(core.lines)

    door.shut()
    await core.cycles(10)  # five minutes without a database
    door.open()
    await core.cycles(4)
    await core.close()

    news = core.lines[before:]
    assert len([x for x in news if "database outage" in x]) == 1, news
    assert len([x for x in news if "database reachable again after" in x]) == 1, news
    # Before the fix the not-run results still in hand at recovery were said as five
    # flips to WAIT and unknown, then five flips back.
    assert [x for x in news if "gate " in x or "trigger " in x] == [], news
    restarts = [x for x in news if "hold restarted" in x]
    assert len(restarts) == 1
    assert "not run: the database is unreachable" in restarts[0]
    runs = read_evidence(core.session.evidence_path).runs
    outage = [r for r in runs if "not run: the database is unreachable" in r.reason]
    assert {(r.name, r.verdict) for r in outage} == {
        ("rate_ok", "wait"),
        ("no_stuck", "wait"),
        ("rate_low", "unknown"),
        ("stuck_high", "unknown"),
    }


async def test_a_watcher_started_while_the_database_is_down_waits_for_it(
    tmp_path: Path, metric_dsn: str, door: Door
) -> None:
    door.shut()
    core = Core(metric_runbook(tmp_path), through(door, metric_dsn))
    await core.start()
    await core.cycles(6)
    assert len(core.said("database outage")) == 1
    assert core.said("off (0 %, visit 1):") == [], "no summary from results it never had"

    door.open()
    await core.cycles(4)  # the next reconnect may be a minute away (backoff)
    await core.close()

    assert len(core.said("database reachable again")) == 1
    assert len(core.said("off (0 %, visit 1): gates none; triggers 2 quiet")) == 1
    runs = read_evidence(core.session.evidence_path).runs
    assert {r.verdict for r in runs if r.name == "rate_low"} == {"unknown", "quiet"}


async def test_watch_once_without_its_database_says_so_and_exits_2(
    tmp_path: Path, metric_dsn: str, door: Door
) -> None:
    door.shut()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(CUTOVER_DATABASE_URL=through(door, metric_dsn), USER="tester")
    runbook = metric_runbook(tmp_path)

    ran = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), "watch", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode == 2, "a cron job is told that nothing could be evaluated"
    assert "database outage" in ran.stdout
    assert "Traceback" not in ran.stdout + ran.stderr
