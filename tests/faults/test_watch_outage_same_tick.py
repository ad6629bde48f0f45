"""The watcher says a database outage once and its end once. The end was also taken from a
query asked in the same tick as the one that found the outage: one that got its answer on
a connection the server had not closed yet. The watcher then said "reachable again" at once,
started judging aloud (gate by gate, each query that failed with the restart) and said the
outage a second time. An answer ends an outage only when it was asked after it began."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from cutover.sources.results import Cause, QueryResult
from watch_world import Core

RUNBOOK = """\
version = 1
title = "outage, watched"

[database]
dsn_env = "CUTOVER_DATABASE_URL"
statement_timeout = "5s"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag-percent"

[queries.rate]
file = "queries/rate.sql"
refresh = "30s"

[queries.other]
file = "queries/rate.sql"
refresh = "30s"

[[stages]]
id = "off"
percent = 0
"""


@pytest.fixture
async def core(tmp_path: Path, empty_dsn: str) -> Core:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute("CREATE TABLE metric (value numeric); INSERT INTO metric VALUES (99)")
    finally:
        await conn.close()
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "rate.sql").write_text("-- Rate\nSELECT value AS rate FROM metric;\n")
    (tmp_path / "flag-percent").write_text("0\n")
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    c = Core(tmp_path / "runbook.toml", empty_dsn)
    await c.start()
    yield c
    await c.close()


async def test_an_answer_asked_in_the_outages_own_tick_does_not_end_it(core: Core) -> None:
    watcher, now = core.watcher, core.clock.now()
    lost = QueryResult(
        "rate", ran_at=now, error="database unreachable: gone", cause=Cause.UNREACHABLE
    )
    watcher._query_done("rate", lost, None, now)
    assert watcher.db_down_since == now
    answered = QueryResult("other", columns=("rate",), rows=((99,),), ran_at=now)
    watcher._query_done("other", answered, None, now)
    assert watcher.db_down_since == now, "the outage ended on an answer from its own tick"
    assert core.said("reachable again") == []
