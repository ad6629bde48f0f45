"""Trends: "no upward trend in memory over 12 h", judged over the evidence. Each evaluation of a
trend records the column's reading (`Judgement.reading`); the evidence keeps a line of it as
a run grows (every few minutes) and when it changes, so the readings of the last `over` are
a series. Its Theil–Sen slope (per hour) and Sen's interval decide the comparison by the
one fail-closed interval rule, and only once the series covers the window."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cutover.judge.reading import Unreadable, amount_text, number_text, read_number
from cutover.judge.stats import theil_sen
from cutover.judge.verdicts import SYMBOL, Judgement, Why, decide, negate
from cutover.record.evidence import decode_run
from cutover.record.store.feed import FileFeed, LineFeed
from cutover.runbook.durations import humanize
from cutover.runbook.model import DEFAULT_CONFIDENCE, Comparison
from cutover.sources.results import QueryResult

# The readings must reach back this share of `over` before the slope decides anything: a
# trend "over 12 h" judged on the first hour of readings would be a different claim.
COVERED = 0.9
# At most this many readings enter the slope (Theil–Sen is quadratic in them); a longer
# series is thinned evenly, keeping its first and last.
MAX_READINGS = 240

Reading = tuple[datetime, float]


class Readings:
    """The readings of trend comparisons in the evidence file, followed incrementally (each
    read costs the bytes appended since the last), kept for the longest window asked. Every
    line of a run is a reading: a run's line is re-appended as it grows, with its value at
    its `last`."""

    def __init__(
        self, source: Path | LineFeed, key: bytes | None, names: Collection[tuple[str, str]]
    ):
        # A path is the files store's evidence; the Postgres store hands a feed of its rows.
        self.feed: LineFeed = FileFeed(source) if isinstance(source, Path | str) else source
        self.key = key
        self.names = frozenset(names)  # (what, name): GATE or TRIGGER, and its id
        self._kept: dict[tuple[str, str], dict[datetime, float]] = {}

    def read(self) -> None:
        """Take in what was appended; a file replaced or shortened is read again from its
        start; one that cannot be read keeps what was read (the trend then waits longer)."""
        try:
            batch = self.feed.read()
        except OSError:
            return
        if batch.restarted:
            self._kept = {}
        for _, raw in batch.lines:
            self._take(raw)

    def _take(self, raw: bytes) -> None:
        try:
            run = decode_run(raw, self.key)
        except (ValueError, KeyError, TypeError, IndexError):
            return  # torn, unsigned or not evidence: no reading (evidence.py says so)
        wanted = (run.what, run.name) in self.names
        if wanted and run.value is not None and math.isfinite(run.value):
            self._kept.setdefault((run.what, run.name), {})[run.last] = run.value

    def series(self, what: str, name: str, since: datetime, until: datetime) -> list[Reading]:
        """The readings of one comparison in [since, until], oldest first."""
        kept = self._kept.get((what, name), {})
        for at in [at for at in kept if at < since - timedelta(days=1)]:
            del kept[at]  # long out of any window asked: not kept for weeks
        return sorted((at, v) for at, v in kept.items() if since <= at <= until)


def judge_trend(
    check: Comparison,
    result: QueryResult,
    readings: Sequence[Reading],
    now: datetime,
) -> Judgement:
    """The slope of `check.column` over the readings of the last `over` and the reading now
    (a fresh result's), against the trend's threshold, in the column's units per hour."""
    assert check.trend is not None and check.column is not None
    trend = check.trend
    try:
        value = read_number(check.query, result, check.column, check.row)
    except Unreadable as exc:
        return Judgement(None, None, None, exc.reason, exc.why)
    at = min(result.ran_at or now, now)
    since = at - timedelta(seconds=trend.over_s)
    series = [(t, v) for t, v in readings if since <= t < at] + [(at, value)]
    confidence = DEFAULT_CONFIDENCE if check.confidence is None else check.confidence
    span = (at - series[0][0]).total_seconds()
    window = humanize(trend.over_s)
    counted = f"{len(series)} readings over {humanize(span)}"
    limit = amount_text(trend.slope, check.column)
    if span < COVERED * trend.over_s:
        reason = (
            f"{counted} of {window}: the evidence does not cover the window yet "
            f"(needs {humanize(COVERED * trend.over_s - span)} more)"
        )
        return Judgement(None, None, None, reason, Why.UNDECIDED, reading=value)
    fit = _fit(tuple(_thinned(series)), confidence)
    if fit is None:
        reason = f"{counted}: too few readings for a slope"
        return Judgement(None, None, None, reason, Why.UNDECIDED, reading=value)
    slope, lo, hi = fit
    per_hour = functools.partial(_per_hour, column=check.column)
    ci = f"{number_text(confidence * 100)} % CI {per_hour(lo)} to {per_hour(hi)}"
    shown = f"slope {per_hour(slope)} ({ci}), {counted}"
    holds = decide(trend.op, lo, hi, trend.slope)
    interval = (lo, hi)
    if holds is None:
        reason = f"{shown} straddles {limit}/h: undecided, needs more readings"
        return Judgement(None, slope, interval, reason, Why.UNDECIDED, reading=value)
    op = trend.op if holds else negate(trend.op)
    reason = f"{shown} {SYMBOL[op]} {limit}/h"
    return Judgement(holds, slope, interval, reason, reading=value)


def _thinned(series: list[Reading]) -> list[Reading]:
    if len(series) <= MAX_READINGS:
        return series
    step = (len(series) - 1) / (MAX_READINGS - 1)
    return [series[round(i * step)] for i in range(MAX_READINGS)]


@functools.lru_cache(maxsize=64)
def _fit(series: tuple[Reading, ...], confidence: float) -> tuple[float, float, float] | None:
    """(slope, lo, hi) per hour. Cached: the console judges every second, and the series
    changes only when the evidence grows."""
    start = series[0][0]
    points = [((t - start).total_seconds() / 3600, v) for t, v in series]
    fit = theil_sen(points, confidence)
    return None if fit is None else (fit.slope, fit.lo, fit.hi)


def _per_hour(x: float, column: str | None = None) -> str:
    """
    >>> _per_hour(1.2e8), _per_hour(-0.5), _per_hour(float("inf"))
    ('+120,000,000/h', '−0.5/h', '+∞/h')
    >>> _per_hour(2.5e7, "memory_bytes")
    '+25 MB/h'
    """
    if x == 0:
        return "0/h"
    sign = "+" if x > 0 else "−"
    return f"{sign}{amount_text(abs(x), column)}/h"
