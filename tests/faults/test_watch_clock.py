"""The wall clock steps back (NTP correcting a drifted host, a VM restored): the watcher
keeps evaluating at its intervals instead of waiting for the clock to catch up with times
it had planned, which would leave a gap in the evidence and restart the hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.record.evidence import read_evidence
from watch_world import Core, metric_database, metric_runbook


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


def evaluations_of(core: Core, name: str) -> int:
    core.watcher.store.flush()  # runs are re-appended every few minutes; count them all
    runs = read_evidence(core.session.evidence_path).runs
    return sum(r.count for r in runs if r.name == name and r.by == "watch")


async def test_a_clock_stepped_back_an_hour_does_not_stop_the_evaluations(
    tmp_path: Path, metric_dsn: str
) -> None:
    core = Core(metric_runbook(tmp_path), metric_dsn)
    await core.start()
    await core.advance_by_alice()
    await core.cycles(4)
    before = evaluations_of(core, "rate_ok")

    core.clock.advance(-3600)
    await core.cycles(6)  # three minutes: six evaluations of a 30 s query
    await core.close()

    assert evaluations_of(core, "rate_ok") - before >= 6
