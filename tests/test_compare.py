"""Two-sample comparisons read like the runbook: v2's success rate against v1's, this
stage's against Stage 1's exit snapshot, no slowdown in the duration histogram, no new
error patterns. PASS only where the whole interval says so, FAIL only where it says the
opposite, WAIT ("need more", "no baseline") in between."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cutover.judge import compare
from cutover.judge.check import judge_stage, report_json
from cutover.judge.compare import Baseline, merge_buckets
from cutover.judge.gates import judge
from cutover.judge.session import Session
from cutover.judge.stats import newcombe_interval
from cutover.judge.verdicts import Verdict, Why, negate
from cutover.record import snapshots
from cutover.runbook import loader as runbook
from cutover.runbook import model
from cutover.runbook.model import (
    DEFAULT_DISTRIBUTION_MARGIN,
    Against,
    Comparison,
    Distribution,
    NewRows,
    Op,
    boundary,
)
from cutover.sources.results import QueryResult

CLI = (sys.executable, "-m", "cutover.cli")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CANARY_EXIT = NOW - timedelta(days=2)
V2 = (("pipeline_version", "v2"),)
V1 = (("pipeline_version", "v1"),)
COLUMNS = ("pipeline_version", "total_imports", "successful_imports", "success_rate_pct")


def by_version(v1: tuple[int, int], v2: tuple[int, int], at: datetime = NOW) -> QueryResult:
    """What `05_v1_vs_v2.sql` returns: (successful, total) per pipeline."""
    rows = tuple(
        (name, total, ok, round(100 * ok / total, 2) if total else None)
        for name, (ok, total) in (("v1", v1), ("v2", v2))
    )
    return QueryResult("v1_vs_v2", COLUMNS, rows, ran_at=at)


def v2_against_v1(op: Op = ">=", margin: float = 1, *, trigger: bool = False) -> Comparison:
    return Comparison(
        "v1_vs_v2",
        op,
        boundary(op, margin, trigger=trigger),
        column="success_rate_pct",
        successes="successful_imports",
        trials="total_imports",
        confidence=0.95,
        row=V2,
        against=Against(row=V1),
        margin=margin,
    )


def test_the_module_does_what_its_doctests_say():
    outcomes = [doctest.testmod(module) for module in (compare, model)]  # model: boundary
    assert sum(o.failed for o in outcomes) == 0
    assert sum(o.attempted for o in outcomes) >= 8


# --- v2 against v1: two rows of one query --------------------------------------------------


def test_v2_at_least_v1_within_a_margin_passes_with_every_number_in_the_reason():
    judgement = judge(v2_against_v1(), by_version((485, 500), (990, 1009)))
    assert judgement.gate_verdict is Verdict.PASS
    diff, lo, hi = newcombe_interval(990, 1009, 485, 500, 0.95)
    assert judgement.value == pytest.approx(diff * 100)
    assert judgement.interval == pytest.approx((lo * 100, hi * 100))
    assert judgement.reason == (
        "v2 98.1 % (990/1,009) vs v1 97.0 % (485/500): diff +1.1 pp, "
        "95 % CI −0.5 to +3.1 pp ≥ −1 (margin 1)"
    )


def test_the_gate_judges_newcombes_interval_of_the_difference():
    # Newcombe 1998's example (a): 56/70 − 48/80 = 0.2, interval 0.0524 to 0.3339.
    result = by_version((48, 80), (56, 70))
    judgement = judge(v2_against_v1(">=", 0), result)
    assert judgement.interval == pytest.approx((5.24, 33.39), abs=0.005)
    assert judgement.gate_verdict is Verdict.PASS  # the whole interval is above 0
    assert judge(v2_against_v1(">=", 5), result).gate_verdict is Verdict.PASS  # ≥ −5 too
    assert judge(v2_against_v1("<=", 0), result).gate_verdict is Verdict.FAIL
    assert judge(v2_against_v1("<=", 10), result).gate_verdict is Verdict.WAIT  # straddles +10


def test_an_interval_that_straddles_the_boundary_waits_and_asks_for_more():
    judgement = judge(v2_against_v1(), by_version((97, 100), (95, 100)))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.UNDECIDED
    # both rows growing as they have (95 % against 97 %), about 2,832 more v2 imports decide
    # that v2 is more than 1 pp below
    assert judgement.reason.endswith(
        "straddles −1 (margin 1): undecided, needs about 2,832 more total_imports"
    )
    assert judgement.more == 2832


def test_v2_clearly_below_v1_fails():
    judgement = judge(v2_against_v1(), by_version((990, 1000), (900, 1000)))
    assert judgement.gate_verdict is Verdict.FAIL
    assert judgement.reason.endswith("< −1 (margin 1)")


def test_a_trigger_fires_only_beyond_the_margin_the_gate_tolerates():
    trigger = v2_against_v1("<", 1, trigger=True)
    assert trigger.value == -1  # the gate's boundary: fires when v2 is > 1 pp below v1
    assert judge(trigger, by_version((990, 1000), (900, 1000))).trigger_fired is True
    assert judge(trigger, by_version((485, 500), (990, 1009))).trigger_fired is False
    assert judge(trigger, by_version((97, 100), (95, 100))).trigger_fired is False  # thin


sides = st.integers(min_value=1, max_value=3000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(sides, sides, st.sampled_from(("<", "<=", ">", ">=")), st.sampled_from((0, 0.5, 1, 5)))
def test_a_gate_and_its_negated_trigger_never_decide_the_same_way(v1, v2, op, margin):
    result = by_version(v1, v2)
    gate = judge(v2_against_v1(op, margin), result)
    trigger = judge(v2_against_v1(negate(op), margin, trigger=True), result)
    if gate.gate_verdict is Verdict.PASS:
        assert trigger.trigger_fired is False
    if gate.gate_verdict is Verdict.FAIL:
        assert trigger.trigger_fired is True
    if gate.gate_verdict is Verdict.WAIT:
        assert trigger.trigger_fired is False  # no evidence either way: quiet, not fired


def test_point_values_compare_without_an_interval():
    check = Comparison(
        "v1_vs_v2", ">=", -1, column="success_rate_pct", row=V2, against=Against(row=V1), margin=1
    )
    judgement = judge(check, by_version((485, 500), (981, 1000)))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.interval is None
    assert judgement.reason == "v2 98.1 vs v1 97: diff +1.1 ≥ −1 (margin 1)"


@pytest.mark.parametrize(
    ("op", "v2", "verdict", "words"),
    [
        ("==", (9_900, 10_000), Verdict.PASS, "within ±2"),
        ("==", (5_000, 10_000), Verdict.FAIL, "beyond ±2"),
        ("==", (97, 100), Verdict.WAIT, "straddles ±2"),
        ("!=", (5_000, 10_000), Verdict.PASS, "beyond ±2"),
    ],
)
def test_equal_within_a_margin_is_a_band(op, v2, verdict, words):
    check = replace(v2_against_v1(op, 2), value=0.0)
    judgement = judge(check, by_version((9_880, 10_000), v2))
    assert judgement.gate_verdict is verdict
    assert words in judgement.reason


def test_no_trials_on_the_other_side_waits_for_them():
    judgement = judge(v2_against_v1(), by_version((0, 0), (990, 1000)))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.NO_DATA
    assert judgement.reason == "v1 0/0: no interval, need more total_imports"


def test_the_other_row_missing_waits_and_names_it():
    result = QueryResult("v1_vs_v2", COLUMNS, (("v2", 1000, 990, 99.0),), ran_at=NOW)
    judgement = judge(v2_against_v1(), result)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "no row with pipeline_version = v1"


@pytest.mark.parametrize(
    ("result", "stale", "reason"),
    [
        (None, False, "v1_vs_v2 has not run yet"),
        (QueryResult("v1_vs_v2", error="timeout"), False, "query failed: timeout"),
        (by_version((1, 1), (1, 1), NOW - timedelta(hours=1)), True, "stale: last ran 1h ago"),
    ],
)
def test_a_comparison_waits_on_a_failed_stale_or_missing_result_like_any_gate(
    result, stale, reason
):
    judgement = judge(v2_against_v1(), result, stale=stale, now=NOW)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == reason


def test_both_sides_are_there_for_the_console_to_show():
    judgement = judge(v2_against_v1(), by_version((485, 500), (990, 1009)))
    assert judgement.this is not None and judgement.other is not None
    assert (judgement.this.label, judgement.this.text) == ("v2", "98.1 % (990/1,009)")
    assert (judgement.other.label, judgement.other.value) == ("v1", 97.0)
    assert dict(judgement.other.row)["total_imports"] == 500
    assert judgement.baseline is None  # another row, not a baseline


# --- against a baseline: a stage's exit snapshot -----------------------------------------------


def v2_against_canary(op: Op = ">=", margin: float = 0) -> Comparison:
    return replace(
        v2_against_v1(op, margin), against=Against(baseline="canary"), value=-float(margin)
    )


def canary(result: QueryResult | None, missing: str = "") -> Baseline:
    return Baseline("canary", result, CANARY_EXIT, missing)


def test_success_at_least_the_canary_stages_passes_on_the_same_row_of_its_snapshot():
    then = by_version((480, 500), (950, 1000), CANARY_EXIT)
    judgement = judge(
        v2_against_canary(), by_version((0, 0), (9_900, 10_000)), baseline=canary(then)
    )
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.reason.startswith(
        "v2 now 99.0 % (9,900/10,000) vs v2 at canary exit 95.0 % (950/1,000): diff +4.0 pp"
    )
    assert judgement.baseline is not None
    assert (judgement.baseline.baseline, judgement.baseline.at) == ("canary", CANARY_EXIT)
    assert judgement.baseline.value == 95.0


def test_no_exit_snapshot_waits_and_never_passes():
    judgement = judge(
        v2_against_canary(),
        by_version((0, 0), (9_900, 10_000)),
        baseline=canary(None, "canary has no exit snapshot yet"),
    )
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.NO_BASELINE
    assert judgement.reason == "no baseline: canary has no exit snapshot yet"


def test_a_baseline_comparison_judged_without_its_baseline_waits():
    judgement = judge(v2_against_canary(), by_version((0, 0), (9_900, 10_000)))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.NO_BASELINE


def test_a_trigger_without_a_baseline_is_quiet_so_the_first_stage_can_be_left():
    # Unknown would block every advance until the very snapshot the advance takes.
    trigger = replace(v2_against_canary("<", 0), op="<")
    judgement = judge(trigger, by_version((0, 0), (1, 100)), baseline=canary(None, "none yet"))
    assert judgement.trigger_fired is False


def test_a_baseline_whose_query_had_failed_is_no_baseline():
    failed = QueryResult("v1_vs_v2", ran_at=CANARY_EXIT, error="timeout")
    judgement = judge(v2_against_canary(), by_version((0, 0), (9, 10)), baseline=canary(failed))
    assert judgement.why is Why.NO_BASELINE
    assert judgement.reason == "no baseline: v1_vs_v2 had failed at canary exit (timeout)"


def test_a_baseline_without_trials_is_no_baseline_and_does_not_ask_for_more():
    then = by_version((0, 0), (0, 0), CANARY_EXIT)
    judgement = judge(v2_against_canary(), by_version((0, 0), (9, 10)), baseline=canary(then))
    assert judgement.why is Why.NO_BASELINE
    assert judgement.reason == (
        "no baseline: at canary exit, v2 had 0/0: no interval, nothing to compare with"
    )


def test_an_invalid_confidence_waits_rather_than_raising():
    check = replace(v2_against_v1(), confidence=1.5)
    assert judge(check, by_version((485, 500), (990, 1009))).gate_verdict is Verdict.WAIT


def test_a_baseline_without_the_selected_row_is_no_baseline():
    then = QueryResult("v1_vs_v2", COLUMNS, (("v1", 500, 480, 96.0),), ran_at=CANARY_EXIT)
    judgement = judge(v2_against_canary(), by_version((0, 0), (9, 10)), baseline=canary(then))
    assert judgement.why is Why.NO_BASELINE
    assert judgement.reason == "no baseline: at canary exit, no row with pipeline_version = v2"


# --- no slowdown: the duration histogram against the baseline's ------------------------------

BUCKETS = ("< 5 min", "5–10 min", "10–20 min", "20–30 min", "> 30 min")


def histogram(*counts: int, buckets: tuple[str, ...] = BUCKETS, at: datetime = NOW):
    """What `03_duration_histogram.sql` returns: bucket, imports, pct."""
    total = sum(counts) or 1
    rows = tuple(
        (b, c, Decimal(round(100 * c / total, 1))) for b, c in zip(buckets, counts, strict=True)
    )
    return QueryResult("durations", ("bucket", "imports", "pct"), rows, ran_at=at)


def no_slowdown(op: Op = "<=", margin: float = DEFAULT_DISTRIBUTION_MARGIN):
    return Comparison(
        "durations",
        op,
        boundary(op, margin, trigger=op in (">", ">=")),
        distribution=Distribution("bucket", "imports"),
        against=Against(baseline="canary"),
        margin=margin,
        confidence=0.95,
    )


def test_a_clear_slowdown_fails_with_the_test_the_p_value_and_the_effect_size():
    # The hand-computed example of test_stats: δ = 0.75, p = 0.0024 two-sided.
    then = histogram(5, 5, 0, 0, 0, at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(0, 5, 5, 0, 0), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.FAIL
    assert judgement.value == pytest.approx(0.75)
    assert judgement.p_value == pytest.approx(0.002357, abs=1e-6)
    assert judgement.reason == (
        "now 10 vs canary exit 10 imports: Mann–Whitney U = 87.5, p = 0.0024 (two-sided); "
        "Cliff's δ +0.75, 95 % CI +0.23 to +1 > +0.147"
    )


def test_the_same_durations_with_plenty_of_imports_pass():
    then = histogram(400, 300, 200, 80, 20, at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(800, 600, 400, 160, 40), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS
    assert "p = 1 (two-sided)" in judgement.reason


def test_a_few_imports_wait_for_more():
    then = histogram(400, 300, 200, 80, 20, at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(2, 1, 1, 0, 0), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason.endswith("straddles +0.147: undecided, need more imports")


def test_a_speed_up_is_no_slowdown():
    # Why Mann–Whitney and not chi-square: the shape changed a lot, but for the better.
    then = histogram(100, 300, 400, 150, 50, at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(600, 300, 80, 15, 5), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.value < -0.3


def test_a_slowdown_trigger_fires_on_the_same_evidence_the_gate_fails_on():
    then = histogram(400, 300, 200, 80, 20, at=CANARY_EXIT)
    now = histogram(100, 200, 300, 250, 150)
    gate = judge(no_slowdown(), now, baseline=canary(then))
    trigger = judge(no_slowdown(">"), now, baseline=canary(then))
    assert gate.gate_verdict is Verdict.FAIL
    assert trigger.trigger_fired is True


def test_an_empty_bucket_left_out_by_one_side_still_lines_up():
    then = histogram(400, 300, 200, 80, buckets=BUCKETS[:4], at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(400, 300, 200, 80, 0), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS


def test_buckets_in_another_order_wait_as_a_mismatch():
    then = histogram(1, 2, 3, 4, 5, buckets=tuple(reversed(BUCKETS)), at=CANARY_EXIT)
    judgement = judge(no_slowdown(), histogram(5, 4, 3, 2, 1), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.MISMATCH
    assert "are not in one order" in judgement.reason


def test_no_imports_yet_waits_and_a_baseline_without_any_is_no_baseline():
    then = histogram(400, 300, 200, 80, 20, at=CANARY_EXIT)
    empty = histogram(0, 0, 0, 0, 0)
    assert judge(no_slowdown(), empty, baseline=canary(then)).reason == (
        "no imports now yet: need more imports"
    )
    judgement = judge(no_slowdown(), then, baseline=canary(replace(empty, ran_at=CANARY_EXIT)))
    assert judgement.why is Why.NO_BASELINE
    assert judgement.reason == "no baseline: canary exit had no imports"


@pytest.mark.parametrize(
    ("count", "words"),
    [(-1, "must be a whole count"), (2.5, "must be a whole count"), ("x", "is not a number")],
)
def test_a_count_that_is_no_count_waits_as_a_mismatch(count, words):
    then = histogram(1, 1, 1, 1, 1, at=CANARY_EXIT)
    now = QueryResult("durations", ("bucket", "imports"), (("< 5 min", count),), ran_at=NOW)
    judgement = judge(no_slowdown(), now, baseline=canary(then))
    assert judgement.why is Why.MISMATCH
    assert words in judgement.reason


histograms = st.lists(st.integers(min_value=0, max_value=400), min_size=5, max_size=5).filter(
    lambda counts: sum(counts) > 0
)


@given(histograms, histograms, st.sampled_from((0.05, 0.147, 0.3)))
def test_a_slowdown_gate_and_its_trigger_never_decide_the_same_way(now, then, margin):
    baseline = canary(histogram(*then, at=CANARY_EXIT))
    gate = judge(no_slowdown("<=", margin), histogram(*now), baseline=baseline)
    trigger = judge(no_slowdown(">", margin), histogram(*now), baseline=baseline)
    assert gate.interval is not None and gate.interval[0] <= gate.value <= gate.interval[1]
    assert trigger.trigger_fired is (gate.gate_verdict is Verdict.FAIL)


def test_merging_bucket_orders():
    assert merge_buckets(["a", "c"], ["a", "b", "c"]) == ["a", "b", "c"]
    assert merge_buckets(["a", "b"], ["c"]) is None  # c before a, or after b?
    assert merge_buckets(["a", "b", "c"], ["a", "b", "c"]) == ["a", "b", "c"]


# --- no new error types: a set against the baseline -------------------------------------------


def errors(*patterns: object, at: datetime = NOW, truncated: bool = False) -> QueryResult:
    rows = tuple((p, 3, Decimal("10.0"), 2) for p in patterns)
    columns = ("error_pattern", "failures", "share_pct", "affected_users")
    return QueryResult("errors", columns, rows, ran_at=at, truncated=truncated)


def no_new_errors(op: Op = "==", value: float = 0) -> Comparison:
    return Comparison(
        "errors",
        op,
        value,
        new_rows=NewRows("error_pattern"),
        against=Against(baseline="canary"),
    )


def test_new_error_patterns_fail_the_gate_and_are_named():
    then = errors("timeout after Ns", at=CANARY_EXIT)
    now = errors("timeout after Ns", "OOM killed", "bad json in <id>")
    judgement = judge(no_new_errors(), now, baseline=canary(then))
    assert judgement.gate_verdict is Verdict.FAIL
    assert judgement.value == 2
    assert judgement.reason == (
        "2 new error_pattern since canary exit ≠ 0: 'OOM killed', 'bad json in <id>' "
        "(3 now, 1 at canary exit)"
    )
    assert judge(no_new_errors(">", 0), now, baseline=canary(then)).trigger_fired is True


def test_only_patterns_seen_before_pass():
    then = errors("timeout after Ns", "OOM killed", at=CANARY_EXIT)
    judgement = judge(no_new_errors(), errors("OOM killed"), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.reason == "0 new error_pattern since canary exit = 0 (1 now, 2 at canary exit)"


def test_many_new_patterns_are_counted_past_the_first_five():
    judgement = judge(
        no_new_errors(), errors(*(f"e{i}" for i in range(8))), baseline=canary(errors("x"))
    )
    assert "'e4' and 3 more" in judgement.reason


def test_keys_match_as_a_snapshot_keeps_them():
    # A Decimal key now is the float JSON kept; a NULL key is a key too.
    then = errors(2.0, None, at=CANARY_EXIT)
    judgement = judge(no_new_errors(), errors(Decimal("2.0"), None), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS


def test_a_nan_key_is_one_key_not_a_new_one_every_time():
    then = errors(Decimal("NaN"), at=CANARY_EXIT)
    judgement = judge(no_new_errors(), errors(float("nan")), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.PASS


def test_a_capped_result_is_not_the_set_and_waits():
    # Cut at the fetch cap, the set is not whole: "new" cannot be told either way.
    judgement = judge(
        no_new_errors(), errors("a", "b", truncated=True), baseline=canary(errors("a"))
    )
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.trigger_fired is None  # a trigger on it is unknown, never quiet
    assert "fetch-capped at 2 rows: not the whole set of error_pattern" in judgement.reason
    capped_no_new = judge(
        no_new_errors(), errors("a", truncated=True), baseline=canary(errors("a"))
    )
    assert capped_no_new.gate_verdict is Verdict.WAIT


def test_a_capped_baseline_cannot_say_a_pattern_is_new():
    then = errors("a", at=CANARY_EXIT, truncated=True)
    judgement = judge(no_new_errors(), errors("a", "b"), baseline=canary(then))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.NO_BASELINE
    # nor that none is
    nothing_new = judge(no_new_errors(), errors("a"), baseline=canary(then))
    assert nothing_new.gate_verdict is Verdict.WAIT


# --- a runbook, its stages and the snapshots on disk ----------------------------------------

RUNBOOK = """\
version = 1
title = "compare"

[flag]
kind = "file"
path = "flag"

[queries.v1_vs_v2]
file = "v1_vs_v2.sql"

[queries.errors]
file = "errors.sql"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10

  [[stages.gates]]
  id = "v2_not_worse"
  query = "v1_vs_v2"
  column = "success_rate_pct"
  successes = "successful_imports"
  trials = "total_imports"
  row = { pipeline_version = "v2" }
  against = { row = { pipeline_version = "v1" } }
  op = ">="
  margin = 1

[[stages]]
id = "ramp"
percent = 50

  [[stages.gates]]
  id = "success_vs_canary"
  query = "v1_vs_v2"
  column = "success_rate_pct"
  successes = "successful_imports"
  trials = "total_imports"
  row = 2
  against = { baseline = "previous" }
  op = ">="
  margin = 1

  [[stages.gates]]
  id = "no_new_errors"
  query = "errors"
  new_rows = { key = "error_pattern" }
  against = { baseline = "canary" }
  op = "=="

[[triggers]]
id = "v2_worse_than_v1"
query = "v1_vs_v2"
column = "success_rate_pct"
successes = "successful_imports"
trials = "total_imports"
row = { pipeline_version = "v2" }
against = { row = { pipeline_version = "v1" } }
op = "<"
margin = 1
"""

SQL = {
    "v1_vs_v2.sql": (
        "-- v1 vs v2\n"
        "SELECT * FROM (VALUES ('v1', 500, 485, 97.0), ('v2', 1009, 990, 98.12)) AS t"
        "(pipeline_version, total_imports, successful_imports, success_rate_pct);\n"
    ),
    "errors.sql": (
        "-- errors\nSELECT * FROM (VALUES ('timeout after Ns', 3), ('OOM killed', 1)) AS t"
        "(error_pattern, failures);\n"
    ),
}


def write_runbook(folder: Path, text: str = RUNBOOK) -> Path:
    for name, body in SQL.items():
        (folder / name).write_text(body, encoding="utf-8")
    (folder / "flag").write_text("0\n", encoding="utf-8")
    path = folder / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_runbook_keys_load_into_comparisons(tmp_path):
    book = runbook.load(write_runbook(tmp_path))
    gate = book.stage("canary").gates[0].check
    assert (gate.row, gate.against, gate.margin, gate.value) == (V2, Against(row=V1), 1, -1)
    assert book.triggers[0].check.value == -1  # the same boundary as the gate's
    ramp = book.stage("ramp").gates
    assert ramp[0].check.row == 2 and ramp[0].check.against == Against(baseline="previous")
    assert ramp[1].check.new_rows == NewRows("error_pattern") and ramp[1].check.value == 0


def test_previous_is_the_stage_before_and_the_first_stage_has_none(tmp_path):
    book = runbook.load(write_runbook(tmp_path))
    check = book.stage("ramp").gates[0].check
    assert compare.baseline_stage(book, book.stage("ramp"), "previous") == "canary"
    assert compare.baseline_stages(book, book.stage("ramp")) == ["canary"]
    first = compare.baseline_for(book, book.stage("zero"), check, {})
    assert (
        first is not None and first.missing == "zero is the first stage: there is no previous one"
    )


def test_a_stage_is_judged_against_the_latest_exit_snapshot_on_disk(tmp_path):
    book = runbook.load(write_runbook(tmp_path))
    session = Session(book, {"USER": "op"})
    ramp = book.stage("ramp")
    now = {
        "v1_vs_v2": by_version((485, 500), (9_900, 10_000)),
        "errors": errors("timeout after Ns", "OOM killed"),
    }
    current, _ = session.state()
    report = session.judge(ramp, now, NOW, current)
    assert [g.judgement.reason for g in report.gates] == [
        "no baseline: canary has no exit snapshot yet",
        "no baseline: canary has no exit snapshot yet",
    ]
    folder = snapshots.snapshots_dir(book.journal_path)
    older = {"v1_vs_v2": by_version((1, 2), (1, 2), CANARY_EXIT), "errors": errors("x")}
    snapshots.take(folder, "canary", 1, "exit", older, CANARY_EXIT - timedelta(days=3))
    then = {
        "v1_vs_v2": by_version((480, 500), (950, 1000), CANARY_EXIT),
        "errors": errors("timeout after Ns", at=CANARY_EXIT),
    }
    snapshots.take(folder, "canary", 2, "exit", then, CANARY_EXIT)
    assert list(session.baselines(ramp)) == ["canary"]
    report = session.judge(ramp, now, NOW, current)
    success, new_errors = report.gates
    assert success.verdict is Verdict.PASS
    assert "vs row 2 at canary exit 95.0 % (950/1,000)" in success.judgement.reason
    assert new_errors.verdict is Verdict.FAIL
    assert "'OOM killed'" in new_errors.judgement.reason
    shown = report_json(report)["gates"][1]
    assert shown["baseline"] == "canary"
    assert shown["against"]["label"] == "canary exit"
    assert shown["against"]["at"] == "2026-11-18T12:00:00Z"
    assert shown["threshold"] == 0 and shown["value"] == 1


def test_judge_stage_without_baselines_waits_and_says_nobody_looked(tmp_path):
    book = runbook.load(write_runbook(tmp_path))
    report = judge_stage(book, book.stage("ramp"), {"v1_vs_v2": by_version((1, 2), (1, 2))}, NOW)
    assert all(g.verdict is Verdict.WAIT for g in report.gates)
    assert report.gates[0].judgement.reason == (
        "no baseline: canary's exit snapshot was not looked up"
    )


def test_check_json_shows_both_sides_of_a_comparison(tmp_path, empty_dsn):
    write_runbook(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env["CUTOVER_DATABASE_URL"] = empty_dsn
    done = subprocess.run(
        [*CLI, "--runbook", "runbook.toml", "check", "--stage", "canary", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    report = json.loads(done.stdout)
    gate = report["gates"][0]
    assert gate["verdict"] == "pass", done.stderr
    assert gate["threshold"] == -1 and gate["op"] == ">="
    assert gate["interval"] == [-0.45, 3.12]
    assert gate["against"]["label"] == "v1" and gate["against"]["value"] == 97
    assert gate["baseline"] is None
    assert gate["reason"] == (
        "v2 98.1 % (990/1,009) vs v1 97.0 % (485/500): diff +1.1 pp, "
        "95 % CI −0.5 to +3.1 pp ≥ −1 (margin 1)"
    )
    trigger = report["triggers"][0]
    assert trigger["fired"] is False and trigger["threshold"] == -1
