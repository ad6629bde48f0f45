"""The verdict types every judging module shares: a gate PASS, FAIL or WAIT, why it is undecided,
and how a comparison came out (with the numbers that show why). One owner, no circle: gates and
comparisons both build on this module, never on each other's types."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from cutover.runbook.frozen import frozen
from cutover.runbook.model import Op

SYMBOL: dict[str, str] = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}


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


@frozen
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


@frozen
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
    # How many more trials (at the rate seen so far) would decide an undecided proportion;
    # None when unknown or when no number would.
    more: int | None = None
    # A trend's: the column's value now, which the evidence keeps as the next evaluation's
    # reading (`value` and `interval` are then the slope and its interval).
    reading: float | None = None

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


def decide(op: Op, lo: float, hi: float, threshold: float) -> bool | None:
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
