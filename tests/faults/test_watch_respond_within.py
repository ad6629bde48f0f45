"""A high trigger's time to respond is counted from when it fired, by the evidence, not
from each new evaluation: before, a trigger without `for` was judged to fire "now" at every
evaluation, so its deadline moved along with the clock and never ran out."""

from __future__ import annotations

from pathlib import Path

import pytest

from watch_world import Core, metric_database, metric_runbook, set_metric


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


@pytest.fixture
async def core(tmp_path: Path, metric_dsn: str):
    c = Core(metric_runbook(tmp_path), metric_dsn)
    await c.start()
    await c.advance_by_alice()
    yield c
    await c.close()


async def test_the_deadline_stays_where_the_trigger_fired(core: Core) -> None:
    await core.cycles(2)
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "stuck", 20)
    await core.cycles(1, every_s=60)
    first = core.watcher.report
    await core.cycles(10, every_s=60)
    later = core.watcher.report
    assert first is not None and later is not None

    def deadline(report):
        (stuck,) = [t for t in report.triggers if t.id == "stuck_high"]
        return stuck.deadline(report.evaluated_at)

    assert deadline(later) == deadline(first)


async def test_a_high_trigger_says_when_its_time_to_respond_runs_out(core: Core) -> None:
    await core.cycles(2)
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "stuck", 20)
    await core.cycles(2, every_s=60)
    fired = core.said("! trigger stuck_high FIRED (high: respond by ")
    assert len(fired) == 1
    assert "unless cleared with a note): 20 > 10" in fired[0]
    assert " left) unless cleared" in fired[0]  # the seconds left, not only a time of day
    assert core.said("the time to respond ran out") == []

    await core.cycles(70, every_s=60)

    overdue = core.said("! trigger stuck_high (high): the time to respond ran out at ")
    assert len(overdue) == 1
    assert overdue[0].endswith("and it is not cleared: roll back, or clear it with a note")
