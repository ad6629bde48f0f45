"""The database driver's own complaints during an outage (asyncpg retrying its pool's
connections, with a traceback) never reach the watcher's output: the watcher says the
outage once, in its own words."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from watch_world import Door, WatchProcess, metric_database, metric_runbook


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


async def test_a_database_outage_puts_no_driver_traceback_in_the_watchers_output(
    tmp_path: Path, metric_dsn: str, pg_server: str
) -> None:
    door = Door(pg_server)
    door.open()
    runbook = metric_runbook(tmp_path)
    # Every query every second, so the outage is seen at once.
    runbook.write_text(runbook.read_text().replace('refresh = "30s"', 'refresh = "1s"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(CUTOVER_DATABASE_URL=door.dsn(urlsplit(metric_dsn).path.lstrip("/")), USER="t")
    watcher = WatchProcess(runbook, env, tmp_path / "watch.log")
    try:
        watcher.wait_for("off (0 %, visit 1): gates none")
        door.shut()
        watcher.wait_for("database outage")
        time.sleep(8)  # the driver's pool keeps trying to reconnect meanwhile
        door.open()
        watcher.wait_for("database reachable again", timeout=90)
        code = watcher.stop()
    finally:
        watcher.kill()
        door.shut()

    assert code == 0
    assert "Traceback" not in watcher.output
    assert "Failed to restore the pool connection floor" not in watcher.output
