"""The statistics behind the verdicts, in plain Python (no scipy): Wilson intervals for a
proportion, Newcombe's interval for the difference of two, and Mann–Whitney on bucketed
counts for "no significant slowdown" against a baseline."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cutover.runbook.frozen import frozen

if TYPE_CHECKING:
    from statistics import NormalDist


@functools.cache
def _normal() -> NormalDist:
    # statistics (with random, fractions) is imported when a verdict first needs it, not by
    # every command that loads the runbook.
    from statistics import NormalDist

    return NormalDist()


def z_for(confidence: float) -> float:
    """Two-sided standard normal quantile: 0.95 → 1.959964. Raises ValueError outside (0, 1).

    >>> round(z_for(0.95), 6)
    1.959964
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return _normal().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: float, trials: float, confidence: float
) -> tuple[float, float] | None:
    """Wilson score interval of successes/trials as proportions in [0, 1]; None when trials <= 0.

    >>> [round(x, 4) for x in wilson_interval(19, 20, 0.95)]
    [0.7639, 0.9911]
    """
    if trials <= 0:
        return None
    z = z_for(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    # Exact ends at 0/n and n/n: rounding noise there would decide `<= 0` or `>= 100` wrongly.
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= trials else min(1.0, centre + half)
    return lo, hi


def newcombe_interval(
    successes_a: float, trials_a: float, successes_b: float, trials_b: float, confidence: float
) -> tuple[float, float, float] | None:
    """The difference of two independent proportions a − b with Newcombe's hybrid score
    interval (Newcombe 1998, method 10: from the two Wilson intervals, no continuity
    correction), as (difference, lo, hi) in [-1, 1]; None when either side has no trials.

    It stays inside [-1, 1], is never zero-width, and behaves at 0/n and n/n where the
    simple Wald interval collapses, which is why a gate on thin traffic waits instead of
    deciding on nothing.

    >>> [round(x, 4) for x in newcombe_interval(56, 70, 48, 80, 0.95)]   # Newcombe's (a)
    [0.2, 0.0524, 0.3339]
    >>> newcombe_interval(1, 0, 1, 2, 0.95) is None
    True
    """
    a = wilson_interval(successes_a, trials_a, confidence)
    b = wilson_interval(successes_b, trials_b, confidence)
    if a is None or b is None:
        return None
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    diff = p_a - p_b
    lo = diff - math.sqrt((p_a - a[0]) ** 2 + (b[1] - p_b) ** 2)
    hi = diff + math.sqrt((a[1] - p_a) ** 2 + (p_b - b[0]) ** 2)
    return diff, max(-1.0, lo), min(1.0, hi)


# -- Mann–Whitney on bucketed counts -------------------------------------------------------
#
# Why Mann–Whitney and not a chi-square test of homogeneity: the buckets of a duration
# histogram are ordered (< 5 min … > 30 min) and the runbook asks a directional question,
# "no significant slowdown". Chi-square ignores the order and flags any change of shape,
# a speed-up as much as a slowdown; Mann–Whitney (as Kayenta's canary judge uses) asks
# whether durations now tend to land in later buckets than in the baseline. Its effect size,
# Cliff's δ = P(now later) − P(now earlier), has a confidence interval, so a distribution
# gate is judged by the same fail-closed interval rule as every other gate: PASS only when
# the whole interval shows no slowdown beyond the margin, FAIL only when the whole interval
# shows one, WAIT in between.


@frozen
class MannWhitney:
    """Mann–Whitney U of sample x against sample y, both counted over the same ordered
    buckets (every observation in a bucket ties with the others there)."""

    u: float  # U of x: pairs where x is in a later bucket, ties counted half
    n_x: int
    n_y: int
    z: float  # tie- and continuity-corrected normal score for "x later than y"
    p_later: float  # one-sided p-value: x tends to land in later buckets
    p_earlier: float  # one-sided p-value: x tends to land in earlier buckets
    p_two_sided: float
    delta: float  # Cliff's δ = P(x later) − P(x earlier), in [-1, 1]
    se_delta: float  # its standard error (DeLong, never below the no-ties null's)

    def delta_interval(self, confidence: float) -> tuple[float, float]:
        """Cliff's δ ± z·se, within [-1, 1].

        >>> t = mann_whitney([0, 5, 5], [5, 5, 0])
        >>> round(t.delta, 2), [round(x, 3) for x in t.delta_interval(0.95)]
        (0.75, [0.231, 1.0])
        """
        half = z_for(confidence) * self.se_delta
        return max(-1.0, self.delta - half), min(1.0, self.delta + half)


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Mann–Whitney U for bucketed counts: `x[k]` and `y[k]` observations in bucket k, the
    buckets in order. The p-values use the normal approximation with the tie correction
    and a continuity correction of ½.

    Five imports of ten in the middle bucket and five in the last, against five in the
    first and five in the middle (midranks 3, 10.5 and 18: U = 5·10.5 + 5·18 − 55 = 87.5):

    >>> t = mann_whitney([0, 5, 5], [5, 5, 0])
    >>> t.u, t.n_x, t.n_y, t.delta, round(t.p_later, 4)
    (87.5, 10, 10, 0.75, 0.0012)
    """
    if len(x) != len(y):
        raise ValueError("both samples must be counted over the same buckets")
    if any(c < 0 for c in (*x, *y)):
        raise ValueError("counts cannot be negative")
    n_x, n_y = sum(x), sum(y)
    if n_x <= 0 or n_y <= 0:
        raise ValueError("each sample needs at least one observation")
    pairs = n_x * n_y
    # Placements: for an x in bucket k, the share of y it beats (ties half); for a y in
    # bucket k, the share of x that beat it. U is the sum of the first over every x.
    below_y = 0.0
    beat_y: list[float] = []
    for cy in y:
        beat_y.append((below_y + cy / 2) / n_y)
        below_y += cy
    above_x = n_x
    beaten_y: list[float] = []
    for cx in x:
        above_x -= cx
        beaten_y.append((above_x + cx / 2) / n_x)
    u = sum(cx * v for cx, v in zip(x, beat_y, strict=True)) * n_y
    a = u / pairs  # P(x later) + ½ P(tie)

    n = n_x + n_y
    ties = sum((cx + cy) ** 3 - (cx + cy) for cx, cy in zip(x, y, strict=True))
    var_u = pairs / 12 * ((n + 1) - (ties / (n * (n - 1)) if n > 1 else 0.0))
    if var_u > 0:
        sd = math.sqrt(var_u)
        z = (u - pairs / 2) / sd
        p_later = _normal().cdf((pairs / 2 + 0.5 - u) / sd)  # not 1 − Φ: keeps a tiny p
        p_earlier = _normal().cdf((u - pairs / 2 + 0.5) / sd)
    else:  # everything in one bucket: no evidence either way
        z, p_later, p_earlier = 0.0, 1.0, 1.0
    p_two_sided = min(1.0, 2 * min(p_later, p_earlier))

    # DeLong's variance of A from the placements. It collapses to 0 when every observation
    # ties (one import on each side, both under 5 minutes), which would make nothing look
    # like certainty; the variance of A under the null without ties, (n + 1) / (12 n_x n_y),
    # is the floor, so thin data stays undecided. It shrinks with n, so plenty of data
    # in one bucket on both sides still decides.
    s_x = (
        sum(cx * (v - a) ** 2 for cx, v in zip(x, beat_y, strict=True)) / (n_x - 1)
        if n_x > 1
        else 0.0
    )
    s_y = (
        sum(cy * (v - a) ** 2 for cy, v in zip(y, beaten_y, strict=True)) / (n_y - 1)
        if n_y > 1
        else 0.0
    )
    var_a = max(s_x / n_x + s_y / n_y, (n + 1) / (12 * pairs))
    return MannWhitney(
        u=u,
        n_x=int(n_x),
        n_y=int(n_y),
        z=z,
        p_later=min(1.0, max(0.0, p_later)),
        p_earlier=min(1.0, max(0.0, p_earlier)),
        p_two_sided=p_two_sided,
        delta=2 * a - 1,
        se_delta=2 * math.sqrt(var_a),
    )


# -- trends: Theil–Sen with Sen's interval -------------------------------------------------
#
# Why rank-based: a memory series has restarts, deploys and one-off spikes; a least-squares
# slope follows an outlier, the median of the pairwise slopes does not. Sen's interval comes
# from the distribution of Mann–Kendall's S (no normality of the values assumed), so a short
# or noisy series has a wide interval and the verdict waits: the same fail-closed interval
# rule as every other comparison.


@frozen
class TheilSen:
    slope: float  # the median of the pairwise slopes, in y per unit of t
    lo: float  # Sen's interval at the confidence asked; ±inf when too few points bound it
    hi: float
    n: int  # points
    s: int  # Mann–Kendall's S: concordant minus discordant pairs


def theil_sen(points: Sequence[tuple[float, float]], confidence: float) -> TheilSen | None:
    """Theil–Sen's slope of (t, y) points with Sen's (1968) confidence interval from the
    variance of Mann–Kendall's S (ties in y corrected); None with fewer than 3 points at
    distinct times.

    Flat data is decided flat, rising data rising, and three points are not enough to
    bound anything at 95 %:

    >>> theil_sen([(0, 5), (1, 5), (2, 5), (3, 5)], 0.95)
    TheilSen(slope=0.0, lo=0.0, hi=0.0, n=4, s=0)
    >>> t = theil_sen([(h, 100 + 10 * h + (3 if h % 2 else -3)) for h in range(12)], 0.95)
    >>> round(t.slope, 1), t.lo > 0, t.s
    (10.0, True, 66)
    >>> t = theil_sen([(0, 1), (1, 3), (2, 2)], 0.95)
    >>> (t.lo, t.hi)
    (-inf, inf)
    """
    points = sorted(points)
    n = len({t for t, _ in points})
    if n < 3:
        return None
    slopes: list[float] = []
    s = 0
    for i, (t1, y1) in enumerate(points):
        for t2, y2 in points[i + 1 :]:
            if t2 == t1:
                continue  # two readings at one moment say nothing about a slope
            slopes.append((y2 - y1) / (t2 - t1))
            s += (y2 > y1) - (y2 < y1)
    slopes.sort()
    count = len(slopes)
    middle = count // 2
    slope = slopes[middle] if count % 2 else (slopes[middle - 1] + slopes[middle]) / 2
    size = len(points)
    ties: dict[float, int] = {}
    for _, y in points:
        ties[y] = ties.get(y, 0) + 1
    var_s = (
        size * (size - 1) * (2 * size + 5) - sum(k * (k - 1) * (2 * k + 5) for k in ties.values())
    ) / 18
    c = z_for(confidence) * math.sqrt(max(var_s, 0.0))
    # Ranks (1-based) of the ends among the sorted slopes: outside 1..count, the data do
    # not bound the slope on that side at this confidence.
    low_rank, high_rank = (count - c) / 2, (count + c) / 2 + 1
    lo = slopes[max(0, math.floor(low_rank) - 1)] if low_rank >= 1 else -math.inf
    hi = slopes[min(count, math.ceil(high_rank)) - 1] if high_rank <= count else math.inf
    return TheilSen(slope, min(lo, slope), max(hi, slope), size, s)
