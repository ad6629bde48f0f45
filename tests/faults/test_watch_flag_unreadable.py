"""The flag cannot be read (the platform is down, a file flag is not a file): the watcher
keeps watching and says so once; an armed rollback still goes ahead (a rollback is never
blocked) and keeps trying until the flag takes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from watch_world import Core, metric_database, metric_runbook, set_metric


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


async def test_an_unreadable_flag_is_said_once_and_an_armed_rollback_still_gets_through(
    tmp_path: Path, metric_dsn: str
) -> None:
    core = Core(metric_runbook(tmp_path, auto_rollback=True), metric_dsn)
    await core.start()
    await core.advance_by_alice()
    await core.cycles(2)
    flag_file = core.flag.path
    flag_file.unlink()
    flag_file.mkdir()  # reads and writes of the flag now fail

    await core.cycles(6, every_s=60)
    assert len(core.said("the flag cannot be read")) == 1
    await set_metric(metric_dsn, "rate", 80)
    await core.cycles(1)
    rollback = core.watcher._tasks["rollback"]
    await asyncio.sleep(2.5)  # a first attempt or two fail
    assert not rollback.done()
    flag_file.rmdir()
    await asyncio.wait_for(rollback, 60)
    await core.cycles(2, every_s=60)
    await core.close()

    assert flag_file.read_text().strip() == "0"
    assert len(core.said("✓ rolled back")) == 1
    assert core.said("attempt 1 failed")
    assert len(core.said("the flag reads again after")) == 1
    intents = [e for e in core.session.journal.read().events if e.kind == "rollback.intent"]
    assert len(intents) == 1


async def test_a_reading_from_before_the_flag_went_unreadable_does_not_stop_a_rollback(
    tmp_path: Path, metric_dsn: str
) -> None:
    # The flag read 0 % once (a hand edit), then could not be read at all: that old reading
    # is no proof that traffic is at 0 % now, so an armed rollback still goes ahead.
    core = Core(metric_runbook(tmp_path, auto_rollback=True), metric_dsn)
    await core.start()
    await core.advance_by_alice()
    await core.cycles(2)
    flag_file = core.flag.path
    flag_file.write_text("0\n")
    await core.cycles(2, every_s=60)
    assert core.watcher.flag_state is not None and core.watcher.flag_state.percent == 0
    flag_file.unlink()
    flag_file.mkdir()
    await core.cycles(2, every_s=60)
    await set_metric(metric_dsn, "rate", 80)
    await core.cycles(1)
    try:
        assert not core.said("nothing to roll back")
        assert "rollback" in core.watcher._tasks
    finally:
        flag_file.rmdir()
        rollback = core.watcher._tasks.get("rollback")
        if rollback is not None:
            await asyncio.wait_for(rollback, 60)
        await core.close()
