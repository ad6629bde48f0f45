"""The watcher (in this process, on a manual clock) with the format's additions: a medium
trigger that escalates to critical by the evidence rolls back only once it has; a suspect
trigger armed in auto_rollback is said and never rolls back; a derived query is computed
from the answers in hand and its gate is recorded like any other."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from cutover.record.evidence import evidence_path, read_evidence
from watch_world import Core, set_metric

RUNBOOK = """\
version = 1
title = "additions, watched"

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

[queries.counts]
file = "queries/counts.sql"
refresh = "30s"

[queries.halved]
kind = "derived"
from = ["rate"]
columns = { half = "rate.rate / 2" }

[[stages]]
id = "off"
percent = 0

[[stages]]
id = "canary"
percent = 50
hold = "1h"
max_gap = "10m"
auto_rollback = ["rate_low", "ok_low"]

  [[stages.gates]]
  id = "half_ok"
  query = "halved"
  column = "half"
  op = ">="
  value = 45

[[triggers]]
id = "rate_low"
query = "rate"
column = "rate"
op = "<"
value = 90
severity = "medium"
escalate = { after = "10m", severity = "critical" }

[[triggers]]
id = "ok_low"
query = "counts"
column = "pct"
op = "<"
value = 95
successes = "ok"
trials = "n"
severity = "critical"
"""


@pytest.fixture
async def core(tmp_path: Path, empty_dsn: str) -> Core:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "CREATE TABLE metric (name text PRIMARY KEY, value numeric);"
            "INSERT INTO metric VALUES ('rate', 99), ('ok', 990), ('n', 1000)"
        )
    finally:
        await conn.close()
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "rate.sql").write_text(
        "-- Rate\nSELECT value AS rate FROM metric WHERE name = 'rate';\n"
    )
    (queries / "counts.sql").write_text(
        "-- Counts\nSELECT ok.value AS ok, n.value AS n, 100 * ok.value / n.value AS pct\n"
        "  FROM metric AS ok, metric AS n WHERE ok.name = 'ok' AND n.name = 'n';\n"
    )
    (tmp_path / "flag-percent").write_text("0\n")
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    c = Core(tmp_path / "runbook.toml", empty_dsn)
    await c.start()
    await c.advance_by_alice()
    yield c
    await c.close()


async def rolled_back(core: Core) -> bool:
    """Whether the watcher's rollback (running in its own task) gets the flag to 0 %."""
    for _ in range(100):
        task = core.watcher._tasks.get("rollback")
        if task is not None:
            await task
        if core.flag.path.read_text().strip() == "0":
            return True
        await core.cycles(1)
    return False


async def test_a_medium_trigger_extends_monitoring_then_escalates_and_rolls_back(core: Core):
    await core.cycles(2)
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "rate", 80)
    await core.cycles(4)  # two minutes: fired as medium, the stage holds
    assert len(core.said("! trigger rate_low FIRED (medium: the hold waits)")) == 1
    assert "rollback" not in core.watcher._tasks
    assert core.flag.path.read_text().strip() == "50"

    await core.cycles(18)  # ten minutes held, by the evidence: critical now
    assert len(core.said("! trigger rate_low ESCALATED medium → critical after 10m")) == 1
    assert await rolled_back(core)
    intents = [e for e in core.session.journal.read().events if e.kind == "rollback.intent"]
    assert len(intents) == 1
    assert intents[0].get("reason").startswith("auto_rollback: trigger rate_low fired (")


async def test_a_suspect_trigger_is_said_and_never_rolls_back(core: Core):
    await core.cycles(2)
    dsn = core.env["CUTOVER_DATABASE_URL"]
    await set_metric(dsn, "ok", 18)
    await set_metric(dsn, "n", 20)
    await core.cycles(6)
    said = core.said("◑ trigger ok_low SUSPECT (critical)")
    assert len(said) == 1, core.lines
    assert "about 53 more n decide it. Advance is held; nothing rolls back" in said[0]
    assert "rollback" not in core.watcher._tasks
    assert core.flag.path.read_text().strip() == "50"
    # More data decides it: 180 of 200 fires, and the armed rollback goes.
    await set_metric(dsn, "ok", 180)
    await set_metric(dsn, "n", 200)
    await core.cycles(2)
    assert len(core.said("! trigger ok_low FIRED (critical")) == 1
    assert await rolled_back(core)


async def test_a_derived_query_is_computed_by_the_watcher_and_its_gate_recorded(core: Core):
    await core.cycles(3)
    assert core.watcher.results["halved"].first_row() == {"half": 49.5}
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "rate", 80)
    await core.cycles(3)
    assert core.watcher.results["halved"].first_row() == {"half": 40}
    assert len(core.said("gate half_ok: PASS → FAIL (40 < 45)")) == 1
    core.watcher.store.flush()
    runs = read_evidence(evidence_path(core.book.journal_path)).runs
    assert {(r.name, r.verdict) for r in runs if r.name == "half_ok"} == {
        ("half_ok", "pass"),
        ("half_ok", "fail"),
    }
