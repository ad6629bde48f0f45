"""The statistics behind two-sample verdicts, pinned to published and hand-computed values:
Newcombe's interval for a difference of proportions, Mann–Whitney on bucketed counts."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cutover.judge import stats
from cutover.judge.stats import mann_whitney, newcombe_interval


def test_the_statistics_do_what_their_doctests_say():
    outcome = doctest.testmod(stats)
    assert outcome.attempted >= 6
    assert outcome.failed == 0


# --- Newcombe 1998 (Statistics in Medicine 17:873–890), Table II, method 10 -------------


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "lo", "hi"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
        (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
        (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
        (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
        (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
        (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
        (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
    ],
)
def test_newcombe_method_10_matches_the_published_table(a, m, b, n, lo, hi):
    diff, low, high = newcombe_interval(a, m, b, n, 0.95)
    assert diff == pytest.approx(a / m - b / n)
    assert (round(low, 4), round(high, 4)) == (lo, hi)


def test_56_of_70_against_48_of_80_is_a_difference_of_0_2():
    diff, lo, hi = newcombe_interval(56, 70, 48, 80, 0.95)
    assert diff == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=5e-5)
    assert hi == pytest.approx(0.3339, abs=5e-5)


def test_no_trials_on_either_side_gives_no_interval():
    assert newcombe_interval(0, 0, 5, 10, 0.95) is None
    assert newcombe_interval(5, 10, 0, 0, 0.95) is None


def test_a_higher_confidence_widens_the_interval():
    _, lo95, hi95 = newcombe_interval(56, 70, 48, 80, 0.95)
    _, lo99, hi99 = newcombe_interval(56, 70, 48, 80, 0.99)
    assert lo99 < lo95 and hi99 > hi95


side = st.integers(min_value=1, max_value=5000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(side, side, st.floats(min_value=0.5, max_value=0.999))
def test_the_interval_holds_the_difference_and_stays_within_minus_1_and_1(a, b, confidence):
    diff, lo, hi = newcombe_interval(*a, *b, confidence)
    assert -1 <= lo <= diff <= hi <= 1
    assert lo < hi  # never zero-width: thin data is never certainty


@given(side, side)
def test_swapping_the_sides_mirrors_the_interval(a, b):
    diff, lo, hi = newcombe_interval(*a, *b, 0.95)
    back, back_lo, back_hi = newcombe_interval(*b, *a, 0.95)
    assert back == pytest.approx(-diff, abs=1e-12)
    assert (back_lo, back_hi) == pytest.approx((-hi, -lo), abs=1e-12)


# --- Mann–Whitney U on bucketed counts -----------------------------------------------------


def test_mann_whitney_matches_the_textbook_example_without_ties():
    # scipy.stats.mannwhitneyu's documented example (Conover): ages of 5 males and 4
    # females, U = 17; normal approximation with continuity correction, two-sided p =
    # 2·(1 − Φ((17 − 10 − ½)/√(5·4·10/12))) = 0.11134688653314041. One bucket per value.
    values = [11, 12, 16, 17, 19, 20, 22, 24, 29]
    males = [19, 22, 16, 29, 24]
    females = [20, 11, 17, 12]
    x = [males.count(v) for v in values]
    y = [females.count(v) for v in values]
    test = mann_whitney(x, y)
    assert test.u == 17
    assert test.p_two_sided == pytest.approx(0.11134688653314041, rel=1e-9)
    assert test.p_later == pytest.approx(0.11134688653314041 / 2, rel=1e-9)


def test_mann_whitney_with_ties_matches_the_hand_computation():
    # Now: 0, 5, 5 imports in three ordered buckets; baseline: 5, 5, 0. Pooled: 5, 10, 5,
    # midranks 3, 10.5, 18. R = 5·10.5 + 5·18 = 142.5, U = R − 10·11/2 = 87.5, mean 50.
    # Ties: (5³−5) + (10³−10) + (5³−5) = 1230; var = 10·10/12 · (21 − 1230/(20·19))
    # = 148.0263; one-sided p = 1 − Φ((87.5 − 50 − ½)/√148.0263) = 1 − Φ(3.04109).
    test = mann_whitney([0, 5, 5], [5, 5, 0])
    assert test.u == 87.5
    var = 100 / 12 * (21 - 1230 / 380)
    assert var == pytest.approx(148.0263, abs=1e-4)
    expected = 0.5 * math.erfc(37 / math.sqrt(var) / math.sqrt(2))
    assert test.p_later == pytest.approx(expected, rel=1e-9)
    assert test.p_later == pytest.approx(0.001179, abs=5e-6)
    # Cliff's δ: later in 62.5 of 100 pairs, earlier in 0, tied in 25 → (62.5 − 12.5)…
    # directly: P(later) = (5·5 + 5·10)/100 = 0.75, P(earlier) = 0 → δ = 0.75.
    assert test.delta == pytest.approx(0.75)


def test_everything_in_one_bucket_is_no_evidence_either_way():
    test = mann_whitney([1], [1])
    assert (test.p_later, test.p_earlier, test.delta) == (1.0, 1.0, 0.0)
    assert test.delta_interval(0.95) == (-1.0, 1.0)  # one import each: undecided


def test_plenty_in_one_bucket_on_both_sides_is_decided_no_slowdown():
    lo, hi = mann_whitney([1000, 0], [1000, 0]).delta_interval(0.95)
    assert -0.06 < lo < 0 < hi < 0.06


def test_counts_must_be_over_the_same_buckets_and_not_negative():
    with pytest.raises(ValueError, match="same buckets"):
        mann_whitney([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="negative"):
        mann_whitney([1, -1], [1, 1])
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney([0, 0], [1, 1])


buckets = st.lists(st.integers(min_value=0, max_value=200), min_size=5, max_size=5).filter(
    lambda c: sum(c) > 0
)


@given(buckets, buckets)
def test_u_of_one_side_and_u_of_the_other_add_up_to_every_pair(x, y):
    assert mann_whitney(x, y).u + mann_whitney(y, x).u == pytest.approx(sum(x) * sum(y))


@given(buckets, buckets)
def test_swapping_the_samples_mirrors_delta_and_the_one_sided_p_values(x, y):
    ab, ba = mann_whitney(x, y), mann_whitney(y, x)
    assert ba.delta == pytest.approx(-ab.delta, abs=1e-12)
    assert ba.p_later == pytest.approx(ab.p_earlier, abs=1e-12)
    lo, hi = ab.delta_interval(0.95)
    assert ba.delta_interval(0.95) == pytest.approx((-hi, -lo), abs=1e-12)


@given(buckets, buckets)
def test_the_delta_interval_holds_delta_and_is_never_zero_width(x, y):
    test = mann_whitney(x, y)
    lo, hi = test.delta_interval(0.95)
    assert -1 <= lo <= test.delta <= hi <= 1
    assert lo < hi
