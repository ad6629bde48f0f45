"""Two-sample comparisons: a row against another row of the same query, or a query's result
against a stage's exit snapshot (a baseline) — a value or proportion, a distribution, a set.
Judged by the one fail-closed rule: decided only where the whole interval is."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from cutover.base.inert import inert
from cutover.judge.baselines import Baseline as Baseline
from cutover.judge.baselines import baseline_for as baseline_for
from cutover.judge.baselines import baseline_stage as baseline_stage
from cutover.judge.baselines import baseline_stages as baseline_stages
from cutover.judge.more import more_pairs_needed, needs
from cutover.judge.reading import (
    Unreadable,
    describe_row,
    need_column,
    number_in,
    number_text,
    plain_text,
    select,
    shown_value,
)
from cutover.judge.stats import mann_whitney, newcombe_interval
from cutover.judge.verdicts import SYMBOL, Judgement, Side, Why, decide, negate
from cutover.runbook.model import (
    DEFAULT_CONFIDENCE,
    Comparison,
    Op,
    RowSelector,
)
from cutover.sources.results import QueryResult

_NAMED = 5  # how many new keys a reason names; the rest are counted

T = TypeVar("T")


# -- judging ----------------------------------------------------------------------------


def judge_two_samples(
    check: Comparison, result: QueryResult, baseline: Baseline | None
) -> Judgement:
    """Judge a comparison with `against` on a fresh `result` (gates.judge has already
    waited on a result that failed, is stale or never ran)."""
    try:
        if check.against is None:
            raise Unreadable(Why.MISMATCH, f"{check.query}: compares with nothing (no against)")
        if check.confidence is not None and not 0 < check.confidence < 1:
            raise Unreadable(
                Why.MISMATCH, f"confidence must be between 0 and 1, got {check.confidence}"
            )
        stage: str | None = None
        at: datetime | None = None
        other = result
        if check.against.baseline is not None:
            other, stage, at = _baseline_result(check, baseline)
        if check.distribution is not None:
            return _judge_distribution(check, result, other, stage, at)
        if check.new_rows is not None:
            return _judge_new_rows(check, result, other, stage, at)
        return _judge_difference(check, result, other, stage, at)
    except Unreadable as exc:
        return Judgement(None, None, None, exc.reason, exc.why)


def _baseline_result(
    check: Comparison, baseline: Baseline | None
) -> tuple[QueryResult, str, datetime | None]:
    named = check.against.baseline if check.against else None
    if baseline is None:
        raise Unreadable(Why.NO_BASELINE, f"no baseline: {named}'s exit snapshot not looked up")
    if baseline.result is None or baseline.stage is None:
        # Damaged is not absent: a trigger that cannot read its baseline is unknown.
        why = Why.FAILED if baseline.damaged else Why.NO_BASELINE
        raise Unreadable(why, f"no baseline: {baseline.missing}")
    then = baseline.result
    if then.error is not None:
        raise Unreadable(
            Why.NO_BASELINE,
            f"no baseline: {check.query} had failed at {baseline.stage} exit ({then.error})",
        )
    if then.ran_at is None:
        raise Unreadable(
            Why.NO_BASELINE, f"no baseline: {check.query} had not run at {baseline.stage} exit"
        )
    return then, baseline.stage, baseline.at


def _then(stage: str | None, read: Callable[..., T], *args: Any) -> T:
    """Read the other side. What is missing in a baseline is no baseline (a gate waits, a
    trigger stays quiet), not a mismatch of the query now."""
    if stage is None:
        return read(*args)
    try:
        return read(*args)
    except Unreadable as exc:
        raise Unreadable(Why.NO_BASELINE, f"no baseline: at {stage} exit, {exc.reason}") from None


def _labels(check: Comparison, stage: str | None) -> tuple[str, str]:
    """How the reason names the two sides: "v2" and "v1", "now" and "canary exit"."""
    mine = _selection(check.row)
    if stage is not None:
        return (
            f"{mine} now" if mine else "now",
            f"{mine} at {stage} exit" if mine else f"{stage} exit",
        )
    assert check.against is not None
    return mine or "row 1", _selection(check.against.row) or "row 1"


def _selection(row: RowSelector | None) -> str:
    if row is None:
        return ""
    if isinstance(row, int):
        return describe_row(row)
    return ", ".join(shown_value(value) for _, value in row)


def _judge_difference(
    check: Comparison,
    result: QueryResult,
    other: QueryResult,
    stage: str | None,
    at: datetime | None,
) -> Judgement:
    """A value or a proportion of one row against the same of another row, or of the same
    row in the baseline: the difference this − other against the boundary."""
    assert check.against is not None
    mine, theirs = check.row, check.against.row if check.against.row is not None else check.row
    this_label, other_label = _labels(check, stage)
    interval: tuple[float, float] | None = None
    confidence = DEFAULT_CONFIDENCE if check.confidence is None else check.confidence
    if check.successes is not None and check.trials is not None:
        s1, n1, row1 = _counts(check, result, mine, this_label)
        if stage is None:
            s2, n2, row2 = _counts(check, other, theirs, other_label)
        else:  # the stage is named once, by _then
            s2, n2, row2 = _then(stage, _counts, check, other, theirs, _selection(mine), True)
        computed = newcombe_interval(s1, n1, s2, n2, confidence)
        assert computed is not None  # both sides have trials (checked above)
        diff, lo, hi = (x * 100 for x in computed)
        interval = (lo, hi)
        this = Side(this_label, s1 / n1 * 100, _share(s1, n1), tuple(row1.items()))
        them = Side(other_label, s2 / n2 * 100, _share(s2, n2), tuple(row2.items()), stage, at)
        ci = f"{number_text(confidence * 100)} % CI"
        shown = (
            f"{this.label} {this.text} vs {them.label} {them.text}: diff "
            f"{_signed(diff, check.value)} pp, {ci} {_signed(lo, check.value)} to "
            f"{_signed(hi, check.value)} pp"
        )
        need = check.trials
        pairs = ((s1, n1), (s2, n2), stage is None)
    elif check.row_count:
        n1, n2 = len(result.rows), len(other.rows)
        if result.truncated or other.truncated:
            raise Unreadable(
                Why.MISMATCH, f"{check.query} was fetch-capped: its row counts cannot be compared"
            )
        diff, lo, hi = float(n1 - n2), float(n1 - n2), float(n1 - n2)
        this = Side(this_label, float(n1), f"{number_text(n1)} rows")
        them = Side(other_label, float(n2), f"{number_text(n2)} rows", (), stage, at)
        shown = f"{this.label} {this.text} vs {them.label} {them.text}: diff {_signed(diff)}"
        need = "rows"
    else:
        column = check.column
        if column is None:
            raise Unreadable(Why.MISMATCH, f"{check.query}: nothing to compare, give a column")
        v1, row1 = _value(check.query, result, column, mine)
        v2, row2 = _then(stage, _value, check.query, other, column, theirs)
        diff = lo = hi = v1 - v2
        if math.isnan(diff):  # ∞ against ∞: no difference can be told
            raise Unreadable(
                Why.MISMATCH, f"{number_text(v1)} against {number_text(v2)}: no difference to judge"
            )
        this = Side(this_label, v1, number_text(v1), tuple(row1.items()))
        them = Side(other_label, v2, number_text(v2), tuple(row2.items()), stage, at)
        shown = (
            f"{this.label} {this.text} vs {them.label} {them.text}: "
            f"diff {_signed(diff, check.value)}"
        )
        need = column
    holds = _decide_difference(check.op, lo, hi, check.value, check.margin)
    reason = f"{shown} {_versus(check.op, holds, check.value, check.margin)}"
    more = None
    if holds is None and check.successes is not None and check.op not in ("==", "!="):
        # More trials now (against a fixed baseline; or both rows growing as they have).
        mine_n, theirs_n, grows = pairs
        more = more_pairs_needed(
            mine_n, theirs_n, check.value, check.op, confidence, other_grows=grows
        )
    if holds is None:
        reason += f": undecided, {needs(more, need)}"
    why = Why.UNDECIDED if holds is None else None
    return Judgement(holds, diff, interval, reason, why, this=this, other=them, more=more)


def _counts(
    check: Comparison,
    result: QueryResult,
    row: RowSelector | None,
    label: str,
    then: bool = False,
) -> tuple[float, float, dict[str, Any]]:
    """successes and trials of the selected row. `then`: of a baseline, which cannot get
    more (the reason says so, and `_then` names the stage)."""
    assert check.successes is not None and check.trials is not None
    for column in (check.trials, check.successes):
        need_column(check.query, result, column)
    values = select(check.query, result, row)
    who = f"{label} " if label else ""
    try:
        trials = number_in(values, check.trials)
        successes = number_in(values, check.successes)
    except Unreadable as exc:
        raise Unreadable(exc.why, f"{who}{exc.reason}: no interval yet".strip()) from None
    counts = f"{number_text(successes)}/{number_text(trials)}"
    if not (math.isfinite(successes) and math.isfinite(trials)):
        raise Unreadable(Why.MISMATCH, f"{who}{counts}: not counts, {check.trials} must be finite")
    if trials <= 0:
        wanted = "nothing to compare with" if then else f"need more {check.trials}"
        raise Unreadable(
            Why.NO_DATA, f"{who}{'had ' if then else ''}{counts}: no interval, {wanted}"
        )
    if not 0 <= successes <= trials:
        raise Unreadable(
            Why.MISMATCH,
            f"{who}{counts}: {check.successes} must be between 0 and {check.trials}",
        )
    return successes, trials, values


def _value(
    query: str, result: QueryResult, column: str, row: RowSelector | None
) -> tuple[float, dict[str, Any]]:
    need_column(query, result, column)
    values = select(query, result, row)
    return number_in(values, column), values


def _share(successes: float, trials: float) -> str:
    """
    >>> _share(485, 500), _share(990, 1009)
    ('97.0 % (485/500)', '98.1 % (990/1,009)')
    """
    return f"{successes / trials * 100:.1f} % ({number_text(successes)}/{number_text(trials)})"


def _decide_difference(
    op: Op, lo: float, hi: float, threshold: float, margin: float
) -> bool | None:
    """`decide`, except `==` and `!=` with a margin: within the band ±margin or beyond it."""
    if op not in ("==", "!=") or margin <= 0:
        return decide(op, lo, hi, threshold)
    if -margin <= lo and hi <= margin:
        within: bool | None = True
    elif hi < -margin or lo > margin:
        within = False
    else:
        return None
    return within if op == "==" else not within


def _versus(op: Op, holds: bool | None, threshold: float, margin: float) -> str:
    """`≥ −1 (margin 1)`, `within ±1`, `straddles −1 (margin 1)`."""
    band = number_text(margin)
    if op in ("==", "!=") and margin > 0:
        if holds is None:
            return f"straddles ±{band}"
        within = holds if op == "==" else not holds
        return f"{'within' if within else 'beyond'} ±{band}"
    limit = _signed_limit(threshold)
    suffix = f" (margin {band})" if margin else ""
    if holds is None:
        return f"straddles {limit}{suffix}"
    return f"{SYMBOL[op if holds else negate(op)]} {limit}{suffix}"


def _signed(x: float, threshold: float | None = None, digits: int = 1) -> str:
    """A difference with its sign (+1.1, −0.6, 0), with more digits only where rounding
    would make it look equal to a threshold it is not equal to.

    >>> _signed(1.1), _signed(-0.6), _signed(0), _signed(-1), _signed(-1.04, -1)
    ('+1.1', '−0.6', '0', '−1', '−1.04')
    """
    if x == 0:
        return "0"
    sign = "+" if x > 0 else "−"
    if x == int(x):
        return f"{sign}{int(abs(x)):,}"
    text = ""
    for places in range(digits, 8):
        text = f"{abs(x):,.{places}f}"
        shown = float(text.replace(",", "")) * (1 if x > 0 else -1)
        if threshold is None or x == threshold or shown != threshold:
            break
    return sign + text


def _signed_limit(x: float) -> str:
    """A boundary as written: −1, +0.147."""
    if x == 0:
        return "0"
    return ("+" if x > 0 else "−") + number_text(abs(x))


# -- distributions ------------------------------------------------------------------------


def _histogram(check: Comparison, result: QueryResult) -> tuple[list[str], list[float]]:
    """The buckets of a histogram result, in row order, and their counts."""
    assert check.distribution is not None
    bucket, count = check.distribution.bucket, check.distribution.count
    for column in (bucket, count):
        need_column(check.query, result, column)
    if result.truncated:
        raise Unreadable(Why.MISMATCH, f"{check.query} was fetch-capped: not the whole histogram")
    at_bucket, at_count = result.columns.index(bucket), result.columns.index(count)
    labels: list[str] = []
    counts: list[float] = []
    for values in result.rows:
        label = "NULL" if values[at_bucket] is None else plain_text(values[at_bucket])
        shown = inert(label, max_len=40)
        if label in labels:
            raise Unreadable(Why.MISMATCH, f"bucket {shown!r} appears twice in {check.query}")
        raw = values[at_count]
        if raw is None:
            raise Unreadable(Why.NO_DATA, f"NULL in {count} of bucket {shown!r}")
        if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
            raise Unreadable(Why.MISMATCH, f"{count} of bucket {shown!r} is not a number")
        number = float(raw)
        if not math.isfinite(number) or number < 0 or number != int(number):
            raise Unreadable(
                Why.MISMATCH, f"{count} of bucket {shown!r} must be a whole count, not {raw}"
            )
        labels.append(label)
        counts.append(number)
    return labels, counts


def merge_buckets(now: list[str], then: list[str]) -> list[str] | None:
    """One order for the buckets of two histograms, each bucket once, keeping both orders
    (a query may leave out an empty bucket); None when they disagree or leave a bucket's
    place open.

    >>> merge_buckets(["<5", "5-10", ">30"], ["<5", ">30"])
    ['<5', '5-10', '>30']
    >>> merge_buckets(["<5", ">30"], ["5-10", ">30"])
    >>> merge_buckets(["a", "b"], ["b", "a"])
    """
    in_now, in_then = set(now), set(then)
    common = [b for b in now if b in in_then]
    if common != [b for b in then if b in in_now]:
        return None
    anchors = set(common)

    def gaps(buckets: list[str]) -> list[list[str]]:
        out: list[list[str]] = [[]]
        for b in buckets:
            if b in anchors:
                out.append([])
            else:
                out[-1].append(b)
        return out

    merged: list[str] = []
    for mine, theirs, anchor in zip(gaps(now), gaps(then), [*common, None], strict=True):
        if mine and theirs:
            return None
        merged += mine or theirs
        if anchor is not None:
            merged.append(anchor)
    return merged


def _judge_distribution(
    check: Comparison,
    result: QueryResult,
    other: QueryResult,
    stage: str | None,
    at: datetime | None,
) -> Judgement:
    """Mann–Whitney on the bucketed counts now against the baseline's (stats.py says why
    not chi-square); the verdict on the interval of Cliff's δ, the p-value beside it."""
    assert check.distribution is not None
    if stage is None:
        raise Unreadable(Why.MISMATCH, "a distribution compares with a baseline, not a row")
    count = check.distribution.count
    labels_now, counts_now = _histogram(check, result)
    labels_then, counts_then = _then(stage, _histogram, check, other)
    order = merge_buckets(labels_now, labels_then)
    if order is None:
        raise Unreadable(
            Why.MISMATCH,
            f"the buckets now ({_listed(labels_now)}) and at {stage} exit "
            f"({_listed(labels_then)}) are not in one order",
        )
    now = dict(zip(labels_now, counts_now, strict=True))
    then = dict(zip(labels_then, counts_then, strict=True))
    x = [now.get(b, 0.0) for b in order]
    y = [then.get(b, 0.0) for b in order]
    n_now, n_then = sum(x), sum(y)
    if n_now <= 0:
        raise Unreadable(Why.NO_DATA, f"no {count} now yet: need more {count}")
    if n_then <= 0:
        raise Unreadable(Why.NO_BASELINE, f"no baseline: {stage} exit had no {count}")
    confidence = DEFAULT_CONFIDENCE if check.confidence is None else check.confidence
    test = mann_whitney(x, y)
    lo, hi = test.delta_interval(confidence)
    holds = _decide_difference(check.op, lo, hi, check.value, check.margin)
    this = Side("now", n_now, f"{number_text(n_now)} {count}")
    them = Side(f"{stage} exit", n_then, f"{number_text(n_then)} {count}", (), stage, at)
    ci = f"{number_text(confidence * 100)} % CI"
    reason = (
        f"now {number_text(n_now)} vs {stage} exit {number_text(n_then)} {count}: Mann–Whitney U = "
        f"{number_text(test.u)}, {_p(test.p_two_sided)} (two-sided); Cliff's δ "
        f"{_signed(test.delta, check.value, 2)}, {ci} {_signed(lo, check.value, 2)} to "
        f"{_signed(hi, check.value, 2)} {_versus_delta(check.op, holds, check.value, check.margin)}"
    )
    if holds is None:
        reason += f": undecided, need more {count}"
    why = Why.UNDECIDED if holds is None else None
    return Judgement(
        holds, test.delta, (lo, hi), reason, why, this=this, other=them, p_value=test.p_two_sided
    )


def _versus_delta(op: Op, holds: bool | None, threshold: float, margin: float) -> str:
    if op in ("==", "!=") and margin > 0:
        return _versus(op, holds, threshold, margin)
    limit = _signed_limit(threshold)
    if holds is None:
        return f"straddles {limit}"
    return f"{SYMBOL[op if holds else negate(op)]} {limit}"


def _p(p: float) -> str:
    """
    >>> _p(0.41234), _p(0.0031), _p(1.0), _p(1e-9)
    ('p = 0.41', 'p = 0.0031', 'p = 1', 'p < 0.0001')
    """
    if p < 0.0001:
        return "p < 0.0001"
    return f"p = {p:.2g}"


def _listed(labels: list[str]) -> str:
    shown = ", ".join(inert(x, max_len=40) for x in labels[:8])
    return shown + (f" and {len(labels) - 8} more" if len(labels) > 8 else "")


# -- sets ---------------------------------------------------------------------------------


def _key_of(value: Any) -> Any:
    """A key as both a live result and a snapshot hold it: numbers by value, the rest as
    the snapshot's text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if not math.isnan(number) else "NaN"  # NaN equals nothing, itself too
    return plain_text(value)


def _keys(check: Comparison, result: QueryResult) -> list[Any]:
    assert check.new_rows is not None
    need_column(check.query, result, check.new_rows.key)
    at = result.columns.index(check.new_rows.key)
    return list(dict.fromkeys(_key_of(values[at]) for values in result.rows))


def _shown_key(key: Any) -> str:
    if key is None:
        return "NULL"
    if isinstance(key, float):
        return number_text(key)
    return repr(inert(str(key), max_len=60))


def _judge_new_rows(
    check: Comparison,
    result: QueryResult,
    other: QueryResult,
    stage: str | None,
    at: datetime | None,
) -> Judgement:
    """Rows whose key the baseline did not have, counted (and named) against `value`."""
    assert check.new_rows is not None
    if stage is None:
        raise Unreadable(Why.MISMATCH, "new_rows compares with a baseline, not a row")
    key = check.new_rows.key
    # A set cut at the fetch cap is not the set: a key beyond the cap may be new, or one
    # counted new may be in the baseline beyond its cap. Neither side decides anything.
    if result.truncated:
        raise Unreadable(
            Why.MISMATCH,
            f"{check.query} was fetch-capped at {len(result.rows):,} rows: not the whole set "
            f"of {key}, so what is new cannot be told",
        )
    now = _keys(check, result)
    then = _then(stage, _keys, check, other)
    if other.truncated:
        raise Unreadable(
            Why.NO_BASELINE,
            f"no baseline: {check.query} was fetch-capped at {stage} exit, so its set of {key} "
            "is not whole",
        )
    seen = set(then)
    new = [k for k in now if k not in seen]
    named = ", ".join(_shown_key(k) for k in new[:_NAMED])
    if len(new) > _NAMED:
        named += f" and {len(new) - _NAMED} more"
    count = float(len(new))
    this = Side("now", float(len(now)), f"{number_text(len(now))} {key}")
    them = Side(f"{stage} exit", float(len(then)), f"{number_text(len(then))} {key}", (), stage, at)
    sizes = f" ({number_text(len(now))} now, {number_text(len(then))} at {stage} exit)"
    holds = decide(check.op, count, count, check.value)
    shown = f"{number_text(count)} new {key} since {stage} exit"
    assert holds is not None
    op = check.op if holds else negate(check.op)
    named_part = f": {named}" if new else ""
    reason = f"{shown} {SYMBOL[op]} {number_text(check.value)}{named_part}{sizes}"
    return Judgement(holds, count, None, reason, None, this=this, other=them)
