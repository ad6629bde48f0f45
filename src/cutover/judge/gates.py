"""Verdicts: judge a gate's or trigger's comparison against a query result, three-valued.
No data, too little data, a stale or failed query: undecided (WAIT), never PASS."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cutover.base.inert import inert
from cutover.judge.stats import wilson_interval
from cutover.judge.stats import z_for as z_for  # callers have always found it here
from cutover.runbook.durations import humanize
from cutover.runbook.model import DEFAULT_CONFIDENCE, Comparison, Op, RowSelector
from cutover.sources.results import Cause, QueryResult

if TYPE_CHECKING:
    from cutover.judge.compare import Baseline


_SYMBOL: dict[str, str] = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
_NEGATION: dict[str, Op] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"


class Why(StrEnum):
    """Why a comparison is not decided, as a type (the reason's words are for people)."""

    UNDECIDED = "undecided"  # the interval straddles the threshold: need more data
    NO_DATA = "no_data"  # the query ran fresh and has nothing to judge (no rows, NULL, 0 trials)
    NOT_RUN = "not_run"  # the query has not run yet
    STALE = "stale"  # the last result is too old to speak for the present
    FAILED = "failed"  # the query failed, timed out, or the database is unreachable
    MISMATCH = "mismatch"  # the runbook and the query disagree (no such column, not a number)
    LACKING = "lacking"  # the database lacks a column the query `needs`: no wait will cure it
    # A comparison with a baseline that has none (no exit snapshot yet, or not of this
    # query): a gate waits; a trigger stays quiet, since nothing shows a regression.
    NO_BASELINE = "no_baseline"


# A trigger judged on these cannot say whether it holds: UNKNOWN, never quiet.
UNKNOWABLE = frozenset({Why.NOT_RUN, Why.STALE, Why.FAILED, Why.MISMATCH, Why.LACKING})


@dataclass(frozen=True)
class Side:
    """One side of a two-sample comparison, to show beside the other."""

    label: str  # "v2", "now", "v1", "canary exit"
    # A percent for a proportion, the column's value, or how many observations (imports of
    # a distribution, keys of a set) the side holds.
    value: float | None
    text: str  # as the reason shows it: "98.1 % (990/1,009)"
    row: tuple[tuple[str, Any], ...] = ()  # the row read, (column, value); () for all rows
    baseline: str | None = None  # the stage whose exit snapshot this side is
    at: datetime | None = None  # when that snapshot was taken


@dataclass(frozen=True)
class Judgement:
    """How one comparison came out, with the numbers that show why.

    `holds` is True when the comparison holds over the whole interval, False when it fails
    over the whole interval, None when undecided or there is nothing to judge.

    For a two-sample comparison `value` and `interval` are the difference (this − other,
    percentage points for proportions), Cliff's δ for a distribution or the count of new
    keys for a set; `this` and `other` are the two sides, `p_value` the test's.
    """

    holds: bool | None
    value: float | None
    interval: tuple[float, float] | None
    reason: str
    why: Why | None = None  # set exactly when holds is None
    trials: float | None = None  # the trials behind a proportion's interval
    this: Side | None = None
    other: Side | None = None
    p_value: float | None = None

    @property
    def baseline(self) -> Side | None:
        """The baseline's side, when this compared with a stage's exit snapshot."""
        return self.other if self.other is not None and self.other.baseline else None

    @property
    def gate_verdict(self) -> Verdict:
        if self.holds is None:
            return Verdict.WAIT
        return Verdict.PASS if self.holds else Verdict.FAIL

    @property
    def trigger_fired(self) -> bool | None:
        """True: the condition holds. False: it does not, or the data is too thin to say it
        does (a trigger fires only on evidence). None: it cannot be evaluated (failed,
        stale, never ran, or the runbook and query disagree): unknown, never quiet."""
        if self.holds is True:
            return True
        if self.why in UNKNOWABLE:
            return None
        return False


def negate(op: Op) -> Op:
    """The comparison that holds exactly where `op` fails: a gate's rollback trigger."""
    return _NEGATION[op]


def judge(
    check: Comparison,
    result: QueryResult | None,
    *,
    stale: bool = False,
    now: datetime | None = None,
    baseline: Baseline | None = None,
) -> Judgement:
    """Judge `check` on `result`. `now` only lets a stale reason say how long ago it ran.
    `baseline`: for a comparison `against = { baseline = … }`, the snapshot's side
    (`compare.baseline_for`); without one such a comparison waits, never passes."""
    if result is None or (result.error is None and result.ran_at is None):
        return _undecided(Why.NOT_RUN, f"{check.query} has not run yet")
    if result.error is not None:
        if result.cause is Cause.LACKING:
            return _undecided(Why.LACKING, result.error)
        return _undecided(Why.FAILED, f"query failed: {result.error}")
    if stale:
        return _undecided(Why.STALE, _stale_reason(result.ran_at, now))
    if check.against is not None or check.distribution is not None or check.new_rows:
        # Two samples: compare.py builds on this module's readers, so it is imported here.
        from cutover.judge import compare

        return compare.judge_two_samples(check, result, baseline)
    try:
        if check.successes is not None or check.trials is not None:
            return _judge_proportion(check, result)
        if check.row_count:
            return _judge_row_count(check, result)
        if check.column is None:
            raise _Unreadable(
                Why.MISMATCH, f"{check.query}: nothing to compare, give a column or row_count"
            )
        value = _read_number(check.query, result, check.column, check.row)
    except _Unreadable as exc:
        return _undecided(exc.why, exc.reason)
    return _judge_point(check, value, _num(value, check.value))


class _Unreadable(Exception):
    def __init__(self, why: Why, reason: str):
        super().__init__(reason)
        self.why = why
        self.reason = reason


def _judge_row_count(check: Comparison, result: QueryResult) -> Judgement:
    count = len(result.rows)
    word = "row" if count == 1 else "rows"
    if not result.truncated:
        return _judge_point(check, count, f"{_num(count)} {word}")
    # Cut at the fetch cap: the count is only a lower bound, judged as [count, ∞).
    holds = _decide(check.op, count, math.inf, check.value)
    shown = f"≥ {_num(count)} {word} (fetch capped)"
    if holds is None:
        return Judgement(
            None,
            float(count),
            None,
            f"{shown}: cannot tell against {_num(check.value)}",
            Why.MISMATCH,
        )
    op = check.op if holds else negate(check.op)
    return Judgement(holds, float(count), None, f"{shown} {_SYMBOL[op]} {_num(check.value)}")


def _judge_point(check: Comparison, value: float, shown: str) -> Judgement:
    holds = _decide(check.op, value, value, check.value)
    op = check.op if holds else negate(check.op)
    return Judgement(holds, float(value), None, f"{shown} {_SYMBOL[op]} {_num(check.value)}")


def _judge_proportion(check: Comparison, result: QueryResult) -> Judgement:
    if check.successes is None or check.trials is None:
        raise _Unreadable(
            Why.MISMATCH, f"{check.query}: successes and trials must be given together"
        )
    confidence = DEFAULT_CONFIDENCE if check.confidence is None else check.confidence
    if not 0 < confidence < 1:
        raise _Unreadable(Why.MISMATCH, f"confidence must be between 0 and 1, got {confidence}")
    try:
        trials = _read_number(check.query, result, check.trials, check.row)
    except _Unreadable as exc:
        raise _Unreadable(exc.why, f"{exc.reason}: no interval yet") from None
    successes = _read_number(check.query, result, check.successes, check.row)
    counts = f"{_num(successes)}/{_num(trials)}"
    if trials <= 0:
        raise _Unreadable(Why.NO_DATA, f"{counts}: no interval yet, need {check.trials}")
    if not 0 <= successes <= trials:
        raise _Unreadable(
            Why.MISMATCH, f"{counts}: {check.successes} must be between 0 and {check.trials}"
        )
    point: float | None = None
    if check.column is not None:
        # The verdict rests on the counts; a NULL display column does not undermine it,
        # but a missing or non-numeric one means the runbook and the query disagree.
        try:
            point = _read_number(check.query, result, check.column, check.row)
        except _Unreadable as exc:
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
    span = f"{_num(lo, check.value, percent)}–{_num(hi, check.value, percent)}"
    shown = f"{counts}: {span}{' %' if percent else ''}"
    limit = _num(check.value)
    holds = _decide(check.op, lo, hi, check.value)
    if holds is None:
        reason = f"{shown} straddles {limit}: undecided, need more {check.trials}"
        return Judgement(None, point, (lo, hi), reason, Why.UNDECIDED, trials)
    op = check.op if holds else negate(check.op)
    return Judgement(holds, point, (lo, hi), f"{shown} {_SYMBOL[op]} {limit}", None, trials)


def _decide(op: Op, lo: float, hi: float, threshold: float) -> bool | None:
    """Whether `x op threshold` holds for every x in [lo, hi] (True), for none (False),
    or for some only (None)."""
    if _everywhere(op, lo, hi, threshold):
        return True
    if _everywhere(negate(op), lo, hi, threshold):
        return False
    return None


def _everywhere(op: Op, lo: float, hi: float, threshold: float) -> bool:
    if op == "<":
        return hi < threshold
    if op == "<=":
        return hi <= threshold
    if op == ">":
        return lo > threshold
    if op == ">=":
        return lo >= threshold
    if op == "==":
        return lo == hi == threshold
    return threshold < lo or threshold > hi


def _read_number(
    query: str, result: QueryResult, column: str, row: RowSelector | None = None
) -> float:
    """The selected row's (the first by default) `column` as a float; _Unreadable with
    the reason why not."""
    _need_column(query, result, column)
    return _number_in(_select(query, result, row), column)


def _need_column(query: str, result: QueryResult, column: str) -> None:
    if column not in result.columns:
        available = ", ".join(result.columns[:20]) or "none"
        raise _Unreadable(Why.MISMATCH, f"{query} has no column {column} (columns: {available})")


def select_row(result: QueryResult, row: RowSelector | None) -> dict[str, Any] | None:
    """The row a comparison reads (`row = { pipeline_version = "v2" }`, `row = 3`, the
    first by default) as column → value; None when there is no such row.

    >>> r = QueryResult("v", ("pipeline_version", "rate"), (("v1", 97.0), ("v2", 98.1)))
    >>> select_row(r, (("pipeline_version", "v2"),)), select_row(r, 3)
    ({'pipeline_version': 'v2', 'rate': 98.1}, None)
    """
    try:
        return _select(result.query_id, result, row)
    except _Unreadable:
        return None


def _select(query: str, result: QueryResult, row: RowSelector | None) -> dict[str, Any]:
    if row is None or isinstance(row, int):
        index = 1 if row is None else row
        if len(result.rows) < index:
            if row is None:
                raise _Unreadable(Why.NO_DATA, f"no rows yet from {query}")
            count = len(result.rows)
            raise _Unreadable(
                Why.NO_DATA,
                f"no row {index} yet: {query} returned {count} row{'' if count == 1 else 's'}",
            )
        return dict(zip(result.columns, result.rows[index - 1], strict=False))
    for name, _ in row:
        _need_column(query, result, name)
    at = [result.columns.index(name) for name, _ in row]
    for values in result.rows:
        if all(cell_matches(values[i], wanted) for i, (_, wanted) in zip(at, row, strict=True)):
            return dict(zip(result.columns, values, strict=False))
    capped = f" in the first {len(result.rows):,} (fetch capped)" if result.truncated else ""
    raise _Unreadable(Why.NO_DATA, f"no row with {describe_row(row)}{capped}")


def describe_row(row: RowSelector) -> str:
    """`pipeline_version = v2`, `row 3`: a row selection as the reasons name it."""
    if isinstance(row, int):
        return f"row {row}"
    return ", ".join(f"{inert(name, max_len=40)} = {_shown_value(v)}" for name, v in row)


def _shown_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(float(value))
    return inert(str(value), max_len=60)


def cell_matches(raw: Any, wanted: str | int | float | bool) -> bool:
    """Whether a cell equals a runbook value: numbers by value (Decimal 2.0 is 2), true and
    false only as booleans, text as text; a date or a uuid by its text, as a snapshot
    keeps it (so a baseline's row is found by the same selection).

    >>> cell_matches(Decimal("2.0"), 2), cell_matches(1, True), cell_matches(None, "v2")
    (True, False, False)
    """
    if raw is None:
        return False
    if isinstance(wanted, bool) or isinstance(raw, bool):
        return isinstance(raw, bool) and isinstance(wanted, bool) and raw == wanted
    if isinstance(wanted, int | float):
        return isinstance(raw, int | float | Decimal) and float(raw) == float(wanted)
    if isinstance(raw, int | float | Decimal):
        return False
    return plain_text(raw) == wanted


def plain_text(value: Any) -> str:
    """A cell as text, the way a snapshot keeps what JSON cannot hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _number_in(row: dict[str, Any], column: str) -> float:
    raw: Any = row[column]
    if raw is None:
        raise _Unreadable(Why.NO_DATA, f"NULL in {column}")
    # bool is an int in Python and a yes/no column compared with `== 1` is a fair gate.
    if not isinstance(raw, int | float | Decimal):
        shown = repr(raw)
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        raise _Unreadable(Why.MISMATCH, f"{column} is not a number: {shown}")
    value = float(raw)
    if math.isnan(value):
        raise _Unreadable(Why.MISMATCH, f"{column} is NaN")
    return value


def _undecided(why: Why, reason: str) -> Judgement:
    return Judgement(holds=None, value=None, interval=None, reason=reason, why=why)


def _stale_reason(ran_at: datetime | None, now: datetime | None) -> str:
    if ran_at is None:
        return "stale: never ran"
    if now is None:
        return f"stale: last ran {ran_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"stale: last ran {humanize((now - ran_at).total_seconds())} ago"


def _num(x: float, threshold: float | None = None, percent: bool = False) -> str:
    """Integers without ".0", thousands separated, one decimal for percents and numbers
    from 1 up, three significant digits below 1; more only where rounding would make a
    number look equal to a threshold it is not equal to."""
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == int(x):
        return f"{int(x):,}"
    fixed = percent or abs(x) >= 1
    for digits in range(1, 8) if fixed else range(3, 10):
        text = f"{x:,.{digits}f}" if fixed else f"{x:.{digits}g}"
        if threshold is None or x == threshold or float(text.replace(",", "")) != threshold:
            return text
    return text


def more_trials_needed(
    successes: float, trials: float, threshold: float, op: Op, confidence: float
) -> int | None:
    """How many more trials, at the proportion seen so far, until the Wilson interval
    decides the comparison (either way); None when no number would (the proportion sits on
    the threshold) or more than ten million would be needed. `threshold` is a percent when
    above 1, as in `judge`.

    >>> more_trials_needed(19, 20, 95, ">=", 0.95) is None   # 95 % exactly: never decides
    True
    >>> more_trials_needed(990, 1000, 95, ">=", 0.95)   # 98.17–99.46 %: decided
    0
    >>> more_trials_needed(99, 100, 95, ">=", 0.95)     # 94.55–99.82 %: 15 more at 99 %
    15
    >>> more_trials_needed(49, 50, 95, ">=", 0.95)
    153
    """
    if trials < 0 or not 0 <= successes <= trials:
        return None
    scale = 100.0 if threshold > 1 else 1.0
    p = successes / trials if trials else None
    if p is None:
        return None

    def decided(n: float) -> bool:
        interval = wilson_interval(p * n, n, confidence)
        if interval is None:
            return False
        lo, hi = interval[0] * scale, interval[1] * scale
        return _decide(op, lo, hi, threshold) is not None

    if decided(trials):
        return 0
    if p * scale == threshold:
        return None
    lo, hi = trials, trials * 2 + 10
    while not decided(hi):
        lo, hi = hi, hi * 2
        if hi > 10_000_000:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return int(hi - trials)
