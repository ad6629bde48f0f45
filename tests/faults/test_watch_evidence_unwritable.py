"""The evidence file cannot be written (a full disk, a permission, something else in its
place): the watcher keeps watching, says so once, and once again when it can."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from watch_world import Core, metric_database, metric_runbook, set_metric


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


async def test_evidence_that_cannot_be_written_is_said_once_and_watching_goes_on(
    tmp_path: Path, metric_dsn: str
) -> None:
    core = Core(metric_runbook(tmp_path), metric_dsn)
    await core.start()
    await core.advance_by_alice()
    await core.cycles(4)
    evidence = core.session.evidence_path
    evidence.unlink()
    evidence.mkdir()  # before the fix, reading it back raised IsADirectoryError: a crash

    await core.cycles(6)
    await set_metric(metric_dsn, "rate", 80)
    await core.cycles(2)
    shutil.rmtree(evidence)
    await core.cycles(2)
    await core.close()

    assert len(core.said("evidence cannot be written")) == 1
    assert len(core.said("gate rate_ok: PASS → FAIL")) == 1, "it kept judging"
    assert len(core.said("evidence is recorded again")) == 1
    assert evidence.is_file()
