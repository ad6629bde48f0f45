"""Verdicts: judge a gate's or trigger's comparison against a query result, three-valued.
No data, too little data, a stale or failed query: undecided (WAIT), never PASS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from cutover.judge import compare
from cutover.judge.compare import Baseline
from cutover.judge.more import more_trials_needed as more_trials_needed
from cutover.judge.more import needs
from cutover.judge.reading import (
    Unreadable,
    amount_text,
    number_text,
    read_number,
)
from cutover.judge.stats import wilson_interval
from cutover.judge.stats import z_for as z_for  # callers have always found it here
from cutover.judge.trend import Reading, judge_trend
from cutover.judge.verdicts import SYMBOL, Judgement, Why, decide, negate
from cutover.runbook.durations import humanize
from cutover.runbook.model import DEFAULT_CONFIDENCE, Comparison
from cutover.sources.results import Cause, QueryResult


def judge(
    check: Comparison,
    result: QueryResult | None,
    *,
    stale: bool = False,
    now: datetime | None = None,
    baseline: Baseline | None = None,
    readings: Sequence[Reading] = (),
) -> Judgement:
    """Judge `check` on `result`. `now` only lets a stale reason say how long ago it ran.
    `baseline`: for a comparison `against = { baseline = … }`, the snapshot's side
    (`compare.baseline_for`); without one such a comparison waits, never passes.
    `readings`: for a trend, its earlier readings from the evidence (trend.Readings)."""
    if result is None or (result.error is None and result.ran_at is None):
        return _undecided(Why.NOT_RUN, f"{check.query} has not run yet")
    if result.error is not None:
        if result.cause is Cause.LACKING:
            return _undecided(Why.LACKING, result.error)
        return _undecided(Why.FAILED, f"query failed: {result.error}")
    if stale:
        return _undecided(Why.STALE, _stale_reason(result.ran_at, now))
    if check.trend is not None:
        return judge_trend(check, result, readings, now or datetime.now(UTC))
    if check.against is not None or check.distribution is not None or check.new_rows:
        return compare.judge_two_samples(check, result, baseline)
    try:
        if check.successes is not None or check.trials is not None:
            return _judge_proportion(check, result)
        if check.row_count:
            return _judge_row_count(check, result)
        if check.column is None:
            raise Unreadable(
                Why.MISMATCH, f"{check.query}: nothing to compare, give a column or row_count"
            )
        value = read_number(check.query, result, check.column, check.row)
    except Unreadable as exc:
        return _undecided(exc.why, exc.reason)
    return _judge_point(check, value, amount_text(value, check.column, check.value))


def _judge_row_count(check: Comparison, result: QueryResult) -> Judgement:
    count = len(result.rows)
    word = "row" if count == 1 else "rows"
    if not result.truncated:
        return _judge_point(check, count, f"{number_text(count)} {word}")
    # Cut at the fetch cap: the count is only a lower bound, judged as [count, ∞).
    holds = decide(check.op, count, math.inf, check.value)
    shown = f"≥ {number_text(count)} {word} (fetch capped)"
    if holds is None:
        return Judgement(
            None,
            float(count),
            None,
            f"{shown}: cannot tell against {number_text(check.value)}",
            Why.MISMATCH,
        )
    op = check.op if holds else negate(check.op)
    return Judgement(holds, float(count), None, f"{shown} {SYMBOL[op]} {number_text(check.value)}")


def _judge_point(check: Comparison, value: float, shown: str) -> Judgement:
    holds = decide(check.op, value, value, check.value)
    op = check.op if holds else negate(check.op)
    limit = amount_text(check.value, None if check.row_count else check.column)
    return Judgement(holds, float(value), None, f"{shown} {SYMBOL[op]} {limit}")


def _judge_proportion(check: Comparison, result: QueryResult) -> Judgement:
    if check.successes is None or check.trials is None:
        raise Unreadable(
            Why.MISMATCH, f"{check.query}: successes and trials must be given together"
        )
    confidence = DEFAULT_CONFIDENCE if check.confidence is None else check.confidence
    if not 0 < confidence < 1:
        raise Unreadable(Why.MISMATCH, f"confidence must be between 0 and 1, got {confidence}")
    try:
        trials = read_number(check.query, result, check.trials, check.row)
    except Unreadable as exc:
        raise Unreadable(exc.why, f"{exc.reason}: no interval yet") from None
    successes = read_number(check.query, result, check.successes, check.row)
    counts = f"{number_text(successes)}/{number_text(trials)}"
    if not (math.isfinite(successes) and math.isfinite(trials)):
        raise Unreadable(Why.MISMATCH, f"{counts}: not counts, {check.trials} must be finite")
    if trials <= 0:
        raise Unreadable(Why.NO_DATA, f"{counts}: no interval yet, need {check.trials}")
    if not 0 <= successes <= trials:
        raise Unreadable(
            Why.MISMATCH, f"{counts}: {check.successes} must be between 0 and {check.trials}"
        )
    point: float | None = None
    if check.column is not None:
        # The verdict rests on the counts; a NULL display column does not undermine it,
        # but a missing or non-numeric one means the runbook and the query disagree.
        try:
            point = read_number(check.query, result, check.column, check.row)
        except Unreadable as exc:
            if exc.why is not Why.NO_DATA:
                raise
    # Thresholds above 1 are percents (`>= 95`), so is a column above 1 (the query's own
    # percent column); otherwise stay in proportions. A threshold of exactly 1 with a
    # proportion column therefore means 100 %, which is what `>= 1` on a rate should mean.
    percent = check.value > 1 or (point is not None and point > 1)
    scale = 100.0 if percent else 1.0
    interval = wilson_interval(successes, trials, confidence)
    assert interval is not None  # trials > 0 was checked above
    lo, hi = interval[0] * scale, interval[1] * scale
    if point is None:
        point = successes / trials * scale
    span = f"{number_text(lo, check.value, percent)}–{number_text(hi, check.value, percent)}"
    shown = f"{counts}: {span}{' %' if percent else ''}"
    limit = number_text(check.value)
    holds = decide(check.op, lo, hi, check.value)
    if holds is None:
        more = more_trials_needed(successes, trials, check.value, check.op, confidence)
        reason = f"{shown} straddles {limit}: undecided, {needs(more, check.trials)}"
        return Judgement(None, point, (lo, hi), reason, Why.UNDECIDED, trials, more=more)
    op = check.op if holds else negate(check.op)
    return Judgement(holds, point, (lo, hi), f"{shown} {SYMBOL[op]} {limit}", None, trials)


def _undecided(why: Why, reason: str) -> Judgement:
    return Judgement(holds=None, value=None, interval=None, reason=reason, why=why)


def _stale_reason(ran_at: datetime | None, now: datetime | None) -> str:
    if ran_at is None:
        return "stale: never ran"
    if now is None:
        return f"stale: last ran {ran_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"stale: last ran {humanize((now - ran_at).total_seconds())} ago"
