"""Verdicts: the Wilson reference numbers from DESIGN.md, each op, and fail-closed WAITs."""

from __future__ import annotations

import doctest
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cutover.judge import gates, more, reading
from cutover.judge.gates import judge, wilson_interval, z_for
from cutover.judge.reading import select_row
from cutover.judge.verdicts import Judgement, Verdict, Why, negate
from cutover.runbook.model import Comparison, Op
from cutover.sources.results import QueryResult

RAN_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OPS: tuple[Op, ...] = ("<", "<=", ">", ">=", "==", "!=")


def success_rate(successful: object, total: object, pct: object = "auto") -> QueryResult:
    """What `01_success_rate.sql` returns: counts plus the query's own rounded percent."""
    if pct == "auto":
        pct = None if not total else round(100 * successful / total, 1)
    return QueryResult(
        "success_rate",
        ("total_imports", "successful_imports", "success_rate_pct"),
        ((total, successful, pct),),
        ran_at=RAN_AT,
    )


def rate_check(op: Op = ">=", value: float = 95, confidence: float | None = 0.95) -> Comparison:
    return Comparison(
        "success_rate",
        op,
        value,
        column="success_rate_pct",
        successes="successful_imports",
        trials="total_imports",
        confidence=confidence,
    )


def column_check(op: Op, value: float, column: str = "stuck") -> Comparison:
    return Comparison("stuck_imports", op, value, column=column)


def one_value(value: object, column: str = "stuck") -> QueryResult:
    return QueryResult("stuck_imports", (column,), ((value,),), ran_at=RAN_AT)


# --- the reference numbers ------------------------------------------------------------


def test_z_for_95_percent_confidence_is_1_96():
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for(0.99) == pytest.approx(2.575829, abs=1e-6)


@pytest.mark.parametrize("confidence", [0, 1, -0.5, 1.5])
def test_z_for_rejects_a_confidence_outside_0_and_1(confidence):
    with pytest.raises(ValueError, match="between 0 and 1"):
        z_for(confidence)


@pytest.mark.parametrize(
    ("successes", "trials", "lo", "hi"),
    [(19, 20, 76.39, 99.11), (990, 1000, 98.17, 99.46), (180, 200, 85.06, 93.43)],
)
def test_wilson_interval_matches_the_reference_numbers(successes, trials, lo, hi):
    interval = wilson_interval(successes, trials, 0.95)
    assert interval is not None
    assert interval[0] * 100 == pytest.approx(lo, abs=0.005)
    assert interval[1] * 100 == pytest.approx(hi, abs=0.005)


def test_no_trials_means_no_interval():
    assert wilson_interval(0, 0, 0.95) is None


def test_19_of_20_is_95_percent_raw_but_the_success_gate_waits():
    judgement = judge(rate_check(">=", 95), success_rate(19, 20))
    assert judgement.value == 95.0
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "19/20: 76.4–99.1 % straddles 95: undecided, need more total_imports"


def test_990_of_1000_passes_the_success_gate():
    judgement = judge(rate_check(">=", 95), success_rate(990, 1000))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.interval == pytest.approx((98.17, 99.46), abs=0.005)
    assert judgement.reason == "990/1,000: 98.2–99.5 % ≥ 95"


def test_180_of_200_fails_the_success_gate():
    judgement = judge(rate_check(">=", 95), success_rate(180, 200))
    assert judgement.gate_verdict is Verdict.FAIL
    assert judgement.reason == "180/200: 85.1–93.4 % < 95"


def test_0_of_0_waits_with_no_interval():
    judgement = judge(rate_check(">=", 95), success_rate(0, 0))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.interval is None
    assert judgement.reason == "0/0: no interval yet, need total_imports"


def test_null_trials_wait_with_no_interval():
    judgement = judge(rate_check(">=", 95), success_rate(None, None))
    assert judgement.gate_verdict is Verdict.WAIT
    assert "NULL in total_imports" in judgement.reason


def test_success_below_95_trigger_fires_on_180_of_200():
    assert judge(rate_check("<", 95), success_rate(180, 200)).trigger_fired


def test_success_below_95_trigger_does_not_fire_on_19_of_20():
    judgement = judge(rate_check("<", 95), success_rate(19, 20))
    assert not judgement.trigger_fired
    assert judgement.holds is None


def test_confidence_defaults_to_95_percent():
    with_default = judge(rate_check(confidence=None), success_rate(990, 1000))
    assert with_default == judge(rate_check(confidence=0.95), success_rate(990, 1000))


def test_higher_confidence_widens_the_interval_and_can_turn_pass_into_wait():
    # 980/1000 at 95 %: 96.9–98.7 %, clear of 96.8; at 99.99 % the interval reaches below it.
    assert judge(rate_check(">=", 96.8, 0.95), success_rate(980, 1000)).gate_verdict == "pass"
    assert judge(rate_check(">=", 96.8, 0.9999), success_rate(980, 1000)).gate_verdict == "wait"


def test_decimal_counts_from_postgres_are_numbers():
    result = success_rate(Decimal(990), Decimal(1000), Decimal("99.0"))
    assert judge(rate_check(), result).gate_verdict is Verdict.PASS


def test_more_successes_than_trials_waits():
    judgement = judge(rate_check(), success_rate(21, 20, 105.0))
    assert judgement.gate_verdict is Verdict.WAIT
    assert "21/20" in judgement.reason


def test_invalid_confidence_waits_rather_than_raising():
    assert judge(rate_check(confidence=1.5), success_rate(990, 1000)).gate_verdict == "wait"


# --- the ×100 rule --------------------------------------------------------------------


def test_a_percent_threshold_scales_the_interval_to_percent():
    judgement = judge(rate_check(">=", 95), success_rate(990, 1000, pct=None))
    assert judgement.interval == pytest.approx((98.17, 99.46), abs=0.005)
    assert judgement.value == pytest.approx(99.0)


def test_a_proportion_threshold_on_a_proportion_column_stays_in_proportions():
    judgement = judge(rate_check(">=", 0.95), success_rate(990, 1000, pct=0.99))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.interval == pytest.approx((0.9817, 0.9946), abs=0.00005)
    assert judgement.reason == "990/1,000: 0.982–0.995 ≥ 0.95"


def test_a_percent_column_scales_even_a_threshold_of_one():
    # "at least 1 %" against the query's percent column, not "at least 100 %".
    judgement = judge(rate_check(">=", 1), success_rate(990, 1000))
    assert judgement.interval == pytest.approx((98.17, 99.46), abs=0.005)
    assert judgement.gate_verdict is Verdict.PASS


def test_a_threshold_of_one_on_proportions_means_all_of_them():
    assert judge(rate_check(">=", 1), success_rate(990, 1000, pct=0.99)).gate_verdict == "fail"


# --- point values, each op ------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "threshold", "holds", "reason"),
    [
        ("<", 3, 5, True, "3 < 5"),
        ("<", 5, 5, False, "5 ≥ 5"),
        ("<=", 5, 5, True, "5 ≤ 5"),
        ("<=", 6, 5, False, "6 > 5"),
        (">", 6, 5, True, "6 > 5"),
        (">", 5, 5, False, "5 ≤ 5"),
        (">=", 5, 5, True, "5 ≥ 5"),
        (">=", 4.5, 5, False, "4.5 < 5"),
        ("==", 0, 0, True, "0 = 0"),
        ("==", 2, 0, False, "2 ≠ 0"),
        ("!=", 2, 0, True, "2 ≠ 0"),
        ("!=", 0, 0, False, "0 = 0"),
    ],
)
def test_each_op_on_a_point_value(op, value, threshold, holds, reason):
    judgement = judge(column_check(op, threshold), one_value(value))
    assert judgement.holds is holds
    assert judgement.value == value
    assert judgement.interval is None
    assert judgement.reason == reason


@pytest.mark.parametrize(
    ("op", "threshold", "holds"),
    [
        (">=", 76.0, True),  # below the whole interval
        (">=", 99.5, False),  # above it
        (">=", 90.0, None),  # inside it
        ("<=", 99.5, True),
        ("<=", 76.0, False),
        ("<=", 90.0, None),
        ("==", 90.0, None),  # == over a real interval never holds
        ("==", 50.0, False),
        ("!=", 50.0, True),
        ("!=", 90.0, None),
    ],
)
def test_each_op_over_the_19_of_20_interval(op, threshold, holds):
    assert judge(rate_check(op, threshold), success_rate(19, 20)).holds is holds


def test_zero_stuck_imports_counts_zero_rows_as_a_real_value():
    stuck = Comparison("stuck_imports", "==", 0, row_count=True)
    none_stuck = QueryResult("stuck_imports", ("user_id", "minutes_stuck"), (), ran_at=RAN_AT)
    judgement = judge(stuck, none_stuck)
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.value == 0
    assert judgement.reason == "0 rows = 0"


def test_stuck_imports_above_ten_fires_on_the_row_count():
    too_many = Comparison("stuck_imports", ">", 10, row_count=True)
    rows = tuple((f"user-{i}", 130 + i) for i in range(1200))
    result = QueryResult("stuck_imports", ("user_id", "minutes_stuck"), rows, ran_at=RAN_AT)
    judgement = judge(too_many, result)
    assert judgement.trigger_fired
    assert judgement.reason == "1,200 rows > 10"


def test_decimal_and_bool_columns_are_numbers():
    assert judge(column_check(">=", 95), one_value(Decimal("97.3"))).value == 97.3
    assert judge(column_check("==", 1), one_value(True)).gate_verdict is Verdict.PASS


def test_rounding_never_makes_a_failing_value_look_equal_to_the_threshold():
    assert judge(column_check(">=", 95), one_value(94.96)).reason == "94.96 < 95"


# --- fail closed: WAIT, never PASS ----------------------------------------------------


def test_a_query_that_never_ran_waits():
    judgement = judge(column_check("==", 0), None)
    assert judgement == Judgement(None, None, None, "stuck_imports has not run yet", Why.NOT_RUN)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.trigger_fired is None  # unknown, never quiet


def test_a_result_without_a_run_time_counts_as_never_ran():
    judgement = judge(column_check("==", 0), QueryResult("stuck_imports", ("stuck",), ((0,),)))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "stuck_imports has not run yet"


def test_a_failed_query_waits_and_says_why():
    failed = QueryResult("stuck_imports", error='column "pipeline_version" does not exist')
    judgement = judge(column_check("==", 0), failed)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == 'query failed: column "pipeline_version" does not exist'


def test_a_stale_result_waits_even_when_it_would_pass():
    judgement = judge(rate_check(), success_rate(990, 1000), stale=True)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason.startswith("stale: last ran")


def test_a_stale_reason_says_how_long_ago_when_given_now():
    later = RAN_AT + timedelta(minutes=3, seconds=20)
    judgement = judge(rate_check(), success_rate(990, 1000), stale=True, now=later)
    assert judgement.reason == "stale: last ran 3m 20s ago"


def test_no_rows_waits():
    empty = QueryResult("stuck_imports", ("stuck",), (), ran_at=RAN_AT)
    judgement = judge(column_check("==", 0), empty)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "no rows yet from stuck_imports"


def test_null_waits():
    judgement = judge(
        column_check(">=", 95, "success_rate_pct"), one_value(None, "success_rate_pct")
    )
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "NULL in success_rate_pct"


def test_a_missing_column_waits_and_names_the_columns_there_are():
    judgement = judge(column_check("==", 0, "stuck_count"), one_value(0, "stuck"))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "stuck_imports has no column stuck_count (columns: stuck)"


def test_a_missing_interval_column_waits_too():
    check = rate_check()
    result = QueryResult("success_rate", ("total_imports",), ((1000,),), ran_at=RAN_AT)
    judgement = judge(check, result)
    assert judgement.gate_verdict is Verdict.WAIT
    assert "no column successful_imports" in judgement.reason


def test_a_missing_percent_column_waits_even_when_the_counts_are_there():
    # The runbook names a column the query does not return: they disagree, say so.
    result = QueryResult(
        "success_rate",
        ("total_imports", "successful_imports"),
        ((1000, 990),),
        ran_at=RAN_AT,
    )
    judgement = judge(rate_check(), result)
    assert judgement.gate_verdict is Verdict.WAIT
    assert "no column success_rate_pct" in judgement.reason


def test_a_null_percent_column_does_not_hide_the_counts():
    judgement = judge(rate_check(), success_rate(990, 1000, pct=None))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.value == pytest.approx(99.0)


def test_a_non_numeric_value_waits():
    judgement = judge(column_check(">=", 95), one_value("99 %"))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "stuck is text ('99 %'), not a number"


def test_nan_waits():
    assert judge(column_check(">=", 95), one_value(Decimal("NaN"))).gate_verdict == "wait"


# --- which row a gate reads -------------------------------------------------------------


def by_version(*rows: tuple, truncated: bool = False) -> QueryResult:
    """What `05_v1_vs_v2.sql` returns: one row per pipeline."""
    return QueryResult(
        "v1_vs_v2",
        ("pipeline_version", "total_imports", "successful_imports", "success_rate_pct"),
        rows,
        ran_at=RAN_AT,
        truncated=truncated,
    )


V1 = ("v1", 500, 485, 97.0)
V2 = ("v2", 1000, 990, 99.0)


def v2_rate(row: object = (("pipeline_version", "v2"),), op: Op = ">=") -> Comparison:
    return Comparison(
        "v1_vs_v2",
        op,
        95,
        column="success_rate_pct",
        successes="successful_imports",
        trials="total_imports",
        confidence=0.95,
        row=row,  # type: ignore[arg-type]
    )


def test_the_success_gate_reads_the_v2_row_not_the_first():
    judgement = judge(v2_rate(), by_version(("v1", 200, 180, 90.0), V2))
    assert judgement.gate_verdict is Verdict.PASS
    assert judgement.reason == "990/1,000: 98.2–99.5 % ≥ 95"
    assert judge(v2_rate(None), by_version(("v1", 200, 180, 90.0), V2)).gate_verdict == "fail"


def test_the_first_matching_row_is_read():
    twice = by_version(V2, ("v2", 200, 180, 90.0))
    assert judge(v2_rate(), twice).reason == "990/1,000: 98.2–99.5 % ≥ 95"


def test_no_matching_row_waits_and_names_the_selection():
    judgement = judge(v2_rate(), by_version(V1))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.NO_DATA
    assert judgement.reason == "no row with pipeline_version = v2: no interval yet"
    point = Comparison(
        "v1_vs_v2", ">=", 95, column="success_rate_pct", row=(("pipeline_version", "v2"),)
    )
    assert judge(point, by_version(V1)).reason == "no row with pipeline_version = v2"


def test_a_trigger_on_a_row_that_is_not_there_is_quiet_not_unknown():
    assert judge(v2_rate(op="<"), by_version(V1)).trigger_fired is False


def test_a_capped_result_says_the_row_may_lie_beyond_the_cap():
    point = Comparison(
        "v1_vs_v2", ">=", 95, column="success_rate_pct", row=(("pipeline_version", "v2"),)
    )
    judgement = judge(point, by_version(V1, truncated=True))
    assert judgement.reason == "no row with pipeline_version = v2 in the first 1 (fetch capped)"


def test_a_row_number_is_one_based():
    assert judge(v2_rate(2), by_version(V1, V2)).reason == "990/1,000: 98.2–99.5 % ≥ 95"
    assert judge(v2_rate(1), by_version(V1, V2)).value == 97.0


def test_a_row_number_past_the_last_row_waits():
    judgement = judge(v2_rate(3), by_version(V1, V2))
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.reason == "no row 3 yet: v1_vs_v2 returned 2 rows: no interval yet"


def test_a_missing_column_named_in_row_waits_as_a_mismatch():
    result = QueryResult("v1_vs_v2", ("total_imports",), ((10,),), ran_at=RAN_AT)
    point = Comparison(
        "v1_vs_v2", ">=", 95, column="total_imports", row=(("pipeline_version", "v2"),)
    )
    judgement = judge(point, result)
    assert judgement.gate_verdict is Verdict.WAIT
    assert judgement.why is Why.MISMATCH
    assert judgement.reason == "v1_vs_v2 has no column pipeline_version (columns: total_imports)"
    assert judge(replace(point, op="<"), result).trigger_fired is None  # unknown, not quiet


@pytest.mark.parametrize(
    ("cell", "wanted", "matches"),
    [
        ("v2", "v2", True),
        ("V2", "v2", False),
        (Decimal("2.0"), 2, True),
        (2, 2.0, True),
        (2, "2", False),  # a number is not its text
        (True, True, True),
        (1, True, False),  # true is not 1
        (None, "v2", False),
        (datetime(2025, 6, 1, tzinfo=UTC), "2025-06-01T00:00:00+00:00", True),
    ],
)
def test_a_row_is_chosen_by_equal_cells(cell, wanted, matches):
    result = QueryResult("q", ("key", "n"), ((cell, 7),), ran_at=RAN_AT)
    check = Comparison("q", "==", 7, column="n", row=(("key", wanted),))
    assert (judge(check, result).holds is True) is matches


def test_select_row_gives_the_console_the_row_a_gate_reads():
    result = by_version(V1, V2)
    assert select_row(result, (("pipeline_version", "v2"),))["total_imports"] == 1000
    assert select_row(result, 1)["pipeline_version"] == "v1"
    assert select_row(result, None)["pipeline_version"] == "v1"
    assert select_row(result, 5) is None
    assert select_row(result, (("nope", "v2"),)) is None


def test_the_row_helpers_do_what_their_doctests_say():
    outcomes = [doctest.testmod(module) for module in (gates, reading, more)]
    assert sum(o.failed for o in outcomes) == 0
    assert sum(o.attempted for o in outcomes) >= 5


# --- properties -----------------------------------------------------------------------

counts = st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
confidences = st.floats(min_value=0.5, max_value=0.9999)
thresholds = st.one_of(
    st.integers(min_value=0, max_value=100).map(float),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)


@given(counts, confidences)
def test_interval_lies_within_0_and_1_and_contains_the_point_estimate(count, confidence):
    successes, trials = count
    interval = wilson_interval(successes, trials, confidence)
    assert interval is not None
    lo, hi = interval
    assert 0 <= lo <= successes / trials <= hi <= 1


@given(
    st.integers(min_value=1, max_value=50).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
    ),
    st.integers(min_value=1, max_value=50),
    confidences,
)
def test_interval_narrows_as_trials_grow_at_the_same_proportion(count, factor, confidence):
    successes, trials = count
    small = wilson_interval(successes, trials, confidence)
    large = wilson_interval(successes * (factor + 1), trials * (factor + 1), confidence)
    assert small is not None and large is not None
    assert large[1] - large[0] < small[1] - small[0]


@given(counts, st.sampled_from(OPS), thresholds, confidences)
def test_a_gate_and_its_negated_trigger_never_decide_the_same_way(count, op, threshold, confidence):
    result = success_rate(*count)
    gate = judge(rate_check(op, threshold, confidence), result)
    trigger = judge(rate_check(negate(op), threshold, confidence), result)
    assume(gate.gate_verdict is not Verdict.WAIT)  # a judge that always waits must not pass
    assert not (gate.gate_verdict is Verdict.PASS and trigger.trigger_fired)
    assert not (gate.gate_verdict is Verdict.FAIL and not trigger.trigger_fired)


@given(counts, st.sampled_from(OPS), thresholds, confidences)
def test_a_passing_gate_means_the_opposite_comparison_fails(count, op, threshold, confidence):
    result = success_rate(*count)
    gate = judge(rate_check(op, threshold, confidence), result)
    opposite = judge(rate_check(negate(op), threshold, confidence), result)
    assume(gate.gate_verdict is not Verdict.WAIT)  # decided cases are what this is about
    expected = {Verdict.PASS: Verdict.FAIL, Verdict.FAIL: Verdict.PASS, Verdict.WAIT: Verdict.WAIT}
    assert opposite.gate_verdict is expected[gate.gate_verdict]


@given(counts, st.sampled_from(OPS), thresholds, confidences)
def test_when_the_interval_holds_the_point_value_holds_too(count, op, threshold, confidence):
    successes, trials = count
    check = Comparison(
        "success_rate",
        op,
        threshold,
        successes="successful_imports",
        trials="total_imports",
        confidence=confidence,
    )
    judgement = judge(check, success_rate(successes, trials, pct=None))
    assume(judgement.holds is not None)
    point = judge(column_check(op, threshold), one_value(judgement.value))
    assert point.holds is judgement.holds


@given(st.sampled_from(OPS), thresholds, st.integers(min_value=0, max_value=30))
def test_a_row_count_is_always_decided(op, threshold, rows):
    check = Comparison("stuck_imports", op, threshold, row_count=True)
    result = QueryResult("stuck_imports", ("user_id",), ((1,),) * rows, ran_at=RAN_AT)
    assert judge(check, result).holds is not None
