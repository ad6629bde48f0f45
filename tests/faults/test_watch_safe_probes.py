"""The watcher runs only probes that change nothing. Once, `watch --once` POSTed the shipped
v1 deprecation probe (a real test import) and the running watcher repeated it every 5
minutes during the prerequisites; a probe with a side effect runs only when a person signs
its step."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.demo.rlm import RLMServer
from test_watch import metric_env, watch_cli
from watch_world import metric_database, metric_runbook

PROBES = """
[probes.health]
url = "{url}/health"
expect_status = 200

[probes.v1_deprecation]
url = "{url}/process-full"
method = "POST"
json = {{ user_id = "test", storage_path = "test.json" }}
expect_status = 200
"""

STEPS = """
  [[stages.steps]]
  id = "rlm_healthy"
  text = "RLM reports healthy"
  probe = "health"

  [[stages.steps]]
  id = "v1_deprecated"
  text = "v1 says it is deprecated"
  probe = "v1_deprecation"
"""


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


def with_probes(folder: Path, url: str) -> Path:
    path = metric_runbook(folder)
    text = path.read_text()
    head, rest = text.split("[[stages]]", 1)
    first, others = rest.split("[[stages]]", 1)
    path.write_text(
        head + PROBES.format(url=url) + "[[stages]]" + first + STEPS + "\n[[stages]]" + others
    )
    return path


async def test_watch_once_runs_the_get_probe_and_never_the_post(tmp_path, metric_dsn):
    with RLMServer() as rlm:
        ran = watch_cli(with_probes(tmp_path, rlm.url), metric_env(metric_dsn), "--once")
        seen = [(r.method, r.path) for r in rlm.requests]
    assert ran.returncode == 0, ran.stderr
    assert ("GET", "/health") in seen
    assert [m for m, p in seen if p.startswith("/process-full")] == []
