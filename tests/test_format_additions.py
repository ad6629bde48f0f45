"""The format's additions at work: trends judged over the evidence (Theil–Sen), derived
results (NULL in, NULL out), stage scope, escalation by the evidence, the editor schema, and
the demo's copy of it all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cutover.demo.runbook_copy import write_demo_runbook
from cutover.judge.check import evaluations, judge_stage
from cutover.judge.session import Session
from cutover.judge.verdicts import Why
from cutover.record.evidence import GATE, TRIGGER, Evaluation, EvidenceStore, evidence_path
from cutover.runbook import keys
from cutover.runbook.keys import Keys
from cutover.runbook.loader import load
from cutover.runbook.schema import schema
from cutover.sources.derived import derive, refresh
from cutover.sources.results import Cause, QueryResult

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

RUNBOOK = """\
version = 1
title = "additions at work"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag"

[queries.mem]
file = "mem.sql"

[queries.share]
kind = "derived"
from = ["mem"]
columns = { per_gb = "mem.bytes / mem.gb", gb = "mem.gb" }

[[stages]]
id = "off"
percent = 0

[[stages]]
id = "canary"
percent = 10

  [[stages.gates]]
  id = "flat"
  query = "mem"
  column = "bytes"
  trend = { over = "2h", op = "<=", slope = 10 }

  [[stages.gates]]
  id = "per_gb_ok"
  query = "share"
  column = "per_gb"
  op = "<"
  value = 1000

[[triggers]]
id = "rising"
query = "mem"
column = "bytes"
trend = { over = "2h", op = ">", slope = 10 }
severity = "medium"

[[triggers]]
id = "high"
query = "mem"
column = "bytes"
op = ">"
value = 500
severity = "medium"
stages = ["canary"]
escalate = { after = "1h", severity = "critical" }
"""


@pytest.fixture
def book(tmp_path: Path):
    (tmp_path / "mem.sql").write_text("-- Memory\nSELECT 1 AS bytes, 1 AS gb;\n")
    (tmp_path / "flag").write_text("0\n")
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    return load(tmp_path / "runbook.toml")


def mem(bytes_: float, at: datetime = NOW, gb: float = 2) -> QueryResult:
    return QueryResult("mem", ("bytes", "gb"), ((bytes_, gb),), ran_at=at)


def record(book, what: str, name: str, values: list[tuple[datetime, float]]) -> None:
    """Readings as the console or watcher records them: one evaluation each, one line each."""
    store = EvidenceStore(
        evidence_path(book.journal_path), by="test", break_s=3600, flush_s=60, clock=lambda: NOW
    )
    for at, value in values:
        store.record([Evaluation(what, name, "canary", "quiet", value, None, "", "", at)])
    store.flush()


def judged(book, result: QueryResult):
    session = Session(book, {"USER": "tester"})
    current, _ = session.state()
    return session.judge(book.stage("canary"), {"mem": result}, NOW, current)


# --- trends over the evidence ---------------------------------------------------------------


def test_a_rising_series_fires_the_trend_and_fails_the_flat_gate(book):
    hours = [NOW - timedelta(minutes=5 * k) for k in range(24, 0, -1)]  # 2 h, every 5 min
    rising = [(at, 100 + 60 * (at - hours[0]).total_seconds() / 3600) for at in hours]
    record(book, TRIGGER, "rising", rising)
    record(book, GATE, "flat", rising)
    report = judged(book, mem(222))
    trigger = next(t for t in report.triggers if t.id == "rising")
    assert trigger.fired is True
    assert trigger.judgement.value == pytest.approx(60, abs=0.5)  # per hour
    assert trigger.judgement.reason.startswith("slope +60")
    assert "25 readings over 2h" in trigger.judgement.reason
    gate = next(g for g in report.gates if g.id == "flat")
    assert gate.verdict.value == "fail"
    # The evidence keeps the reading (the next evaluation's series), not the slope.
    recorded = {e.name: e.value for e in evaluations(report, {})}
    assert recorded["rising"] == 222 and recorded["flat"] == 222


def test_a_flat_series_is_quiet_and_passes(book):
    hours = [NOW - timedelta(minutes=10 * k) for k in range(12, 0, -1)]
    record(book, TRIGGER, "rising", [(at, 300) for at in hours])
    record(book, GATE, "flat", [(at, 300 + (k % 2)) for k, at in enumerate(hours)])
    report = judged(book, mem(300))
    assert next(t for t in report.triggers if t.id == "rising").state == "quiet"
    assert next(g for g in report.gates if g.id == "flat").verdict.value == "pass"


def test_a_window_the_evidence_does_not_cover_yet_waits_saying_how_much_more(book):
    recent = [(NOW - timedelta(minutes=10 * k), 100.0 * k) for k in range(3, 0, -1)]
    record(book, TRIGGER, "rising", recent)
    report = judged(book, mem(0))
    trigger = next(t for t in report.triggers if t.id == "rising")
    assert trigger.state == "quiet" and trigger.judgement.why is Why.UNDECIDED
    assert trigger.judgement.reason == (
        "4 readings over 30m of 2h: the evidence does not cover the window yet (needs 1h 18m more)"
    )


# --- stage scope and escalation ---------------------------------------------------------------


def test_a_trigger_is_off_outside_its_stages_and_escalates_by_the_evidence(book):
    held = {"high": NOW - timedelta(minutes=30)}
    off = judge_stage(book, book.stage("off"), {"mem": mem(900)}, NOW, holding_since=held)
    high = next(t for t in off.triggers if t.id == "high")
    assert (high.state, high.fired, high.holds_advance) == ("off", False, False)
    assert high.judgement.reason == "not live in off (live in canary)"
    assert all(e.name != "high" for e in evaluations(off, {}))  # no evidence where it is off

    canary = book.stage("canary")
    early = judge_stage(book, canary, {"mem": mem(900)}, NOW, holding_since=held)
    high = next(t for t in early.triggers if t.id == "high")
    assert (high.fired, high.severity, high.escalated_from) == (True, "medium", None)
    held = {"high": NOW - timedelta(minutes=61)}
    late = judge_stage(book, canary, {"mem": mem(900)}, NOW, holding_since=held)
    high = next(t for t in late.triggers if t.id == "high")
    assert (high.fired, high.severity, high.escalated_from) == (True, "critical", "medium")
    assert [t.id for t in late.fired("critical")] == ["high"]


# --- derived results --------------------------------------------------------------------------


def test_a_derived_result_is_null_where_nothing_was_measured_and_its_gate_waits(book):
    query = book.queries["share"]
    assert derive(query, {"mem": mem(900)}).first_row() == {"per_gb": 450, "gb": 2}
    by_zero = derive(query, {"mem": mem(900, gb=0)})
    assert by_zero.first_row() == {"per_gb": None, "gb": 0}
    results = {"mem": mem(900, gb=0)}
    refresh(book.queries, results)  # as every place that gathers results does
    report = judge_stage(book, book.stage("canary"), results, NOW)
    gate = next(g for g in report.gates if g.id == "per_gb_ok")
    assert (gate.verdict.value, gate.judgement.reason) == ("wait", "NULL in per_gb")
    # Not run until what it reads has answered; as old as the oldest answer.
    assert derive(query, {}).ran_at is None
    assert derive(query, {"mem": mem(1, at=NOW - timedelta(hours=1))}).ran_at == NOW - timedelta(
        hours=1
    )


def test_a_derived_result_fails_with_what_it_reads_keeping_the_cause(book):
    query = book.queries["share"]
    lacking = QueryResult("mem", ran_at=NOW, error="needs column gb; add it", cause=Cause.LACKING)
    failed = derive(query, {"mem": lacking})
    assert (failed.error, failed.cause) == ("mem: needs column gb; add it", Cause.LACKING)
    text = derive(query, {"mem": QueryResult("mem", ("bytes", "gb"), (("a lot", 2),), NOW)})
    assert text.error == "mem.bytes is text ('a lot'), not a number"
    missing = derive(query, {"mem": QueryResult("mem", ("bytes",), ((1,),), ran_at=NOW)})
    assert missing.error == "mem has no column gb (columns: bytes)"


# --- the editor schema ------------------------------------------------------------------------


def test_cutover_schema_prints_the_schema_the_shipped_runbook_names():
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "schema"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == schema()
    assert done.stdout == (REPO / "runbook.schema.json").read_text(encoding="utf-8")
    first = (REPO / "runbook.toml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "#:schema ./runbook.schema.json"


def test_every_key_the_loader_knows_has_its_doc_in_the_schema():
    text = json.dumps(schema(), ensure_ascii=False)
    tables = [v for v in vars(keys).values() if isinstance(v, Keys)]
    tables += list(keys.FLAG_BY_KIND.values())
    assert len(tables) > 20
    for table in tables:
        for key, doc in table.docs.items():
            assert doc.strip(), key
            assert json.dumps(doc, ensure_ascii=False) in text, (key, doc)
            assert f'"{key}": {{' in text, key


def test_the_shipped_runbook_and_the_additions_validate_against_the_schema():
    the_schema = schema()
    shipped = tomllib.loads((REPO / "runbook.toml").read_text(encoding="utf-8"))
    assert valid(shipped, the_schema) == []
    additions = tomllib.loads(RUNBOOK)
    assert valid(additions, the_schema) == []
    wrong = tomllib.loads(RUNBOOK.replace('severity = "critical" }', 'severity = "low" }'))
    assert valid(wrong, the_schema)
    typo = tomllib.loads(RUNBOOK.replace("escalate = {", "escalates = {"))
    assert valid(typo, the_schema)


def valid(value: Any, s: dict, at: str = "$") -> list[str]:
    """A small JSON Schema checker for the keywords `cutover schema` writes; the mistakes
    found, as paths (none: valid)."""
    if "anyOf" in s:
        return [] if any(not valid(value, sub, at) for sub in s["anyOf"]) else [at]
    kinds = s.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    if kinds and not any(checks[k](value) for k in kinds):
        return [at]
    if "enum" in s and value not in s["enum"]:
        return [at]
    if "pattern" in s and isinstance(value, str) and not re.search(s["pattern"], value):
        return [at]
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < s.get("minimum", value) or value > s.get("maximum", value):
            return [at]
        if "exclusiveMaximum" in s and value >= s["exclusiveMaximum"]:
            return [at]
    found: list[str] = []
    if isinstance(value, dict):
        if len(value) < s.get("minProperties", 0):
            return [at]
        found += [f"{at}.{k}" for k in s.get("required", []) if k not in value]
        for key, item in value.items():
            if key in s.get("properties", {}):
                found += valid(item, s["properties"][key], f"{at}.{key}")
            elif s.get("additionalProperties") is False:
                found.append(f"{at}.{key}")
            elif isinstance(s.get("additionalProperties"), dict):
                found += valid(item, s["additionalProperties"], f"{at}.{key}")
    if isinstance(value, list):
        if len(value) < s.get("minItems", 0):
            return [at]
        for i, item in enumerate(value):
            found += valid(item, s.get("items", {}), f"{at}[{i}]")
    return found


# --- the demo's copy --------------------------------------------------------------------------


def test_the_demo_copy_scales_escalations_and_trends_and_reads_gate_sets(tmp_path: Path):
    copy = load(write_demo_runbook(REPO / "runbook.toml", tmp_path / "demo"))
    triggers = {t.id: t for t in copy.triggers}
    assert triggers["slow_persisting"].escalate.after_s == 6  # 6 h → 6 s
    assert triggers["memory_rising"].check.trend.over_s == 600  # 12 s, raised to the floor
    canary = copy.stage("canary")
    assert [g.id for g in canary.gates][:2] == ["success", "v2_success"]  # from the set
    slowest = max(copy.queries[g.check.query].refresh_s for g in canary.gates)
    assert canary.max_gap_s >= 2 * slowest
