"""A panel shows a comparison's two sides beside each other (the issue: "panels show the
current value beside the baseline's"), and a gate that reads a named row shows that row's
value, not the first row's."""

from __future__ import annotations

from datetime import UTC, datetime

from cutover.judge.gates import judge
from cutover.runbook.model import Against, Comparison, boundary
from cutover.sources.results import QueryResult
from cutover.tui.triggers import reading

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
COLUMNS = ("pipeline_version", "total_imports", "successful_imports", "success_rate_pct")
RESULT = QueryResult(
    "v1_vs_v2",
    COLUMNS,
    (("v1", 500, 485, 97.0), ("v2", 1009, 990, 98.12)),
    ran_at=NOW,
)


def test_a_two_sample_gate_shows_both_sides():
    check = Comparison(
        "v1_vs_v2",
        ">=",
        boundary(">=", 1, trigger=False),
        column="success_rate_pct",
        successes="successful_imports",
        trials="total_imports",
        confidence=0.95,
        row=(("pipeline_version", "v2"),),
        against=Against(row=(("pipeline_version", "v1"),)),
        margin=1,
    )
    shown = reading(check, RESULT, judge(check, RESULT)).plain
    assert shown == "v2 98.1 % (990/1,009) vs v1 97.0 % (485/500) · "


def test_a_gate_on_a_named_row_shows_that_rows_value():
    check = Comparison(
        "v1_vs_v2", ">=", 95, column="success_rate_pct", row=(("pipeline_version", "v2"),)
    )
    assert reading(check, RESULT, judge(check, RESULT)).plain == "success_rate_pct = 98.12 · "
