"""An optional gate whose query lacks a column it needs does not hold a stage (it says so);
every other WAIT still does. Without it, the v2-row gate of the shipped runbook would wait
forever on the real schema (no pipeline_version) and block the canary."""

from __future__ import annotations

from datetime import UTC, datetime

from cutover.judge.check import evaluations, judge_stage
from cutover.judge.hold import Hold
from cutover.record.state import initial
from cutover.runbook.loader import load
from cutover.sources.results import Cause, QueryResult
from cutover.traffic.flags import FlagState
from cutover.traffic.machine import decide

RUNBOOK = """
version = 1
title = "t"
[flag]
kind = "file"
path = "flag"
[queries.split]
file = "split.sql"
needs = { pipeline_version = "add it to see the v1/v2 split" }
[[stages]]
id = "only"
percent = 0
  [[stages.gates]]
  id = "v2"
  query = "split"
  column = "n"
  op = ">="
  value = 1
  optional = true
"""

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_an_optional_gate_lacking_its_column_does_not_hold_the_stage(tmp_path):
    (tmp_path / "split.sql").write_text(
        "SELECT count(*) AS n FROM t WHERE pipeline_version = 'v2';"
    )
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    book = load(tmp_path / "runbook.toml")
    stage = book.stages[0]
    lacking = QueryResult(
        "split", ran_at=NOW, error="needs column pipeline_version", cause=Cause.LACKING
    )
    report = judge_stage(book, stage, {"split": lacking}, NOW)
    (gate,) = report.gates
    assert gate.verdict.value == "wait" and not gate.counts
    assert report.verdict.value == "pass"
    held = Hold(0, 0, 0, None, None, None)
    reads = FlagState(0, "0")
    allowed = decide(book, initial(book), NOW, report, reads, held).advance
    assert allowed.allowed, allowed.reason
    assert [e.verdict for e in evaluations(report, {})] == ["n/a"]
    # Any other reason to wait still holds the stage.
    failed = QueryResult("split", ran_at=NOW, error="timed out", cause=Cause.TIMEOUT)
    waiting = judge_stage(book, stage, {"split": failed}, NOW)
    assert waiting.gates[0].counts and waiting.verdict.value == "wait"
    assert not decide(book, initial(book), NOW, waiting, reads, held).advance.allowed


def test_optional_needs_a_query_that_names_what_it_needs(tmp_path):
    import pytest

    from cutover.runbook.problems import ProblemsFound

    (tmp_path / "split.sql").write_text("SELECT 1 AS n;")
    (tmp_path / "runbook.toml").write_text(
        RUNBOOK.replace('needs = { pipeline_version = "add it to see the v1/v2 split" }\n', "")
    )
    with pytest.raises(ProblemsFound, match="names no `needs`"):
        load(tmp_path / "runbook.toml")
