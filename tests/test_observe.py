"""The observed share: what traffic actually does, read from the shipped routed_share query
(v2 imports as rows, v1 as rows or as the RLM's log lines, served here by the fake Render)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from cutover.demo.render import FakeRender
from cutover.runbook import loader as runbook
from cutover.sources.db import QueryRunner
from cutover.sources.observe import observed_share

REPO = Path(__file__).resolve().parents[1]


async def insert(dsn: str, started: datetime, v1: int, v2: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at, pipeline_version)"
            " VALUES ('processing', $1, $2)",
            [(started, "v1")] * v1 + [(started, "v2")] * v2,
        )
    finally:
        await conn.close()


async def test_one_v2_import_in_thousands_after_a_rollback_is_not_zero(soulprint_dsn):
    book = runbook.load(REPO / "runbook.toml")
    rollback_at = datetime.now(UTC) - timedelta(minutes=2)
    await insert(soulprint_dsn, rollback_at - timedelta(minutes=1), v1=50, v2=50)  # before
    await insert(soulprint_dsn, rollback_at + timedelta(seconds=30), v1=2_999, v2=1)  # after
    runner = QueryRunner(book.database, soulprint_dsn)
    with FakeRender(api_key="rnd_k") as render:
        env = {
            "RENDER_API_URL": render.url,
            "RENDER_API_KEY": render.api_key,
            "RENDER_OWNER_ID": render.owner_id,
            "RENDER_RLM_SERVICE_ID": render.service_id,
        }
        try:
            since = await observed_share(book, runner, rollback_at, env)
            window = await observed_share(book, runner, environ=env)  # the last hour
        finally:
            await runner.aclose()
    assert since is not None and since.percent is not None
    assert 0 < since.percent < 0.05  # 1 of 3,000: small, and not rounded away to 0
    assert "imports 3,000" in since.detail and "v2_imports 1" in since.detail
    assert window is not None and window.percent is not None and window.percent > 1
