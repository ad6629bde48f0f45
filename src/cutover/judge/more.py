"""How much more data decides an undecided proportion: "needs about 153 more imports" for a
Wilson interval against a threshold, and for Newcombe's interval of a difference against a
boundary (more imports now against a fixed baseline, or both rows growing as they have).
Pure arithmetic over the same intervals the verdicts use."""

from __future__ import annotations

from collections.abc import Callable

from cutover.judge.stats import newcombe_interval, wilson_interval
from cutover.judge.verdicts import decide
from cutover.runbook.model import Op

LIMIT = 10_000_000  # more than this is "not in any reasonable time": said as None


def needs(more: int | None, what: str) -> str:
    """How an undecided verdict says what would decide it.

    >>> needs(153, "total_imports"), needs(None, "total_imports")
    ('needs about 153 more total_imports', 'need more total_imports')
    """
    if more is None or more <= 0:
        return f"need more {what}"
    return f"needs about {more:,} more {what}"


def _least(decided: Callable[[float], bool], start: float) -> int | None:
    """The least n ≥ start for which `decided(n)` (assumed to stay true once true), or None
    beyond LIMIT."""
    if decided(start):
        return 0
    lo, hi = start, start * 2 + 10
    while not decided(hi):
        lo, hi = hi, hi * 2
        if hi > LIMIT:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return int(hi - start)


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
        return decide(op, lo, hi, threshold) is not None

    if decided(trials):
        return 0
    if p * scale == threshold:
        return None
    return _least(decided, trials)


def more_pairs_needed(
    this: tuple[float, float],
    other: tuple[float, float],
    boundary: float,
    op: Op,
    confidence: float,
    *,
    other_grows: bool,
) -> int | None:
    """How many more trials on this side (successes, trials), at the proportions seen so far,
    until Newcombe's interval of this − other (in percentage points) decides `op boundary`;
    None when no number would. `other_grows`: the other side is another row that grows with
    this one at the same ratio (v2 against v1); otherwise it is a baseline, fixed, and its
    own width may leave the difference undecidable however much comes now.

    A 1 pp margin at 99 % on both sides, against a baseline of 400 imports: 478 more than
    the 600 now (1,078 in all) decide 99 % vs 99 % ≥ −1; at 98.5 % it takes some 2,300,
    and at 97 % the baseline is too thin for any number now:

    >>> more_pairs_needed((594, 600), (396, 400), -1, ">=", 0.95, other_grows=False)
    478
    >>> more_pairs_needed((97, 100), (388, 400), -1, ">=", 0.95, other_grows=False) is None
    True
    """
    (s1, n1), (s2, n2) = this, other
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = s1 / n1, s2 / n2
    ratio = n2 / n1

    def decided(n: float) -> bool:
        m = n * ratio if other_grows else n2
        t = p2 * m if other_grows else s2
        computed = newcombe_interval(p1 * n, n, t, m, confidence)
        if computed is None:
            return False
        _, lo, hi = computed
        return decide(op, lo * 100, hi * 100, boundary) is not None

    if decided(n1):
        return 0
    if (p1 - p2) * 100 == boundary:
        return None
    return _least(decided, n1)
