"""The record laid on a time axis: every visit of every stage (when entered, how, when left),
every move with its outcome, each gate's and trigger's readings from the evidence, the gaps
in it and the hold's restarts. Pure over the journal's events and the evidence file; no
chart and no UI: `cutover report` draws it, the console's trends and history view show it."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from cutover.judge.hold import OK_VERDICTS
from cutover.judge.verdicts import decide
from cutover.record import state as replayed
from cutover.record.events import known
from cutover.record.evidence import GATE, TRIGGER, Run
from cutover.record.evidence_tail import EvidenceTail
from cutover.record.journal import Event
from cutover.record.store.feed import LineFeed
from cutover.runbook.durations import humanize
from cutover.runbook.model import Comparison, Runbook, Stage, Trigger

__all__ = [
    "GATE",
    "TRIGGER",
    "Gap",
    "Move",
    "Point",
    "Readings",
    "Restart",
    "Visit",
    "gaps",
    "interval_text",
    "moves",
    "restarts",
    "trigger_states",
    "value_text",
    "visits",
]


@dataclass(frozen=True)
class Visit:
    """One stay in a stage, as the journal's replay sees it."""

    stage: str
    visit: int  # the state's visit counter: sign-offs carry it
    entered_at: datetime
    left_at: datetime | None  # None: the cutover is still here
    percent: int
    how: str  # "start", "advance", "rollback", "stepback", "reconcile"
    by: str  # who moved it here

    def end(self, now: datetime) -> datetime:
        return self.left_at or now


@dataclass(frozen=True)
class Move:
    """A move's intent with its outcome: done, failed, or still pending."""

    move: str
    seq: int
    at: datetime
    actor: str
    from_stage: str
    to_stage: str
    from_percent: int | None
    to_percent: int | None
    reason: str
    outcome: str  # "done", "failed", "pending"
    ended_at: datetime | None = None
    live_s: float | None = None  # intent to traffic getting the new value (the journal's)
    effect: str = ""
    error: str = ""
    overrides: tuple[tuple[str, str], ...] = ()  # (gate, why it waited)
    override_note: str = ""


def visits(runbook: Runbook, events: Iterable[Event]) -> list[Visit]:
    """Every visit, oldest first, by replaying the journal one event at a time: the same
    rules that decide the current stage decide where each visit begins and ends."""
    out: list[Visit] = []
    current = replayed.initial(runbook)
    opened: Visit | None = None
    for event in events:
        before = current
        current = replayed.replay(runbook, [event], since=current)
        if opened is None and current.entered_at is not None:
            first = current.entered_at
            opened = Visit(
                current.stage_id, current.visit, first, None, current.percent, "start", ""
            )
        if opened is None or (current.stage_id, current.visit) == (before.stage_id, before.visit):
            continue
        kind = known(event.kind)
        how = (kind.move if kind is not None else None) or "reconcile"
        by = before.pending.actor if before.pending is not None else event.actor
        out.append(_closed(opened, event.ts))
        opened = Visit(current.stage_id, current.visit, event.ts, None, current.percent, how, by)
    if opened is not None:
        out.append(opened)
    return out


def _closed(visit: Visit, at: datetime) -> Visit:
    return Visit(visit.stage, visit.visit, visit.entered_at, at, visit.percent, visit.how, visit.by)


def moves(events: Iterable[Event]) -> list[Move]:
    """Every move the journal holds, in the order they were started."""
    started: dict[str, Move] = {}
    order: list[str] = []
    for event in events:
        kind = known(event.kind)
        if kind is None or kind.move is None:
            continue
        action = str(event.get("action") or event.seq)
        if kind.phase == "intent":
            listed = event.get("overrides")
            overrides = tuple(
                (str(o.get("gate")), str(o.get("reason") or ""))
                for o in (listed if isinstance(listed, list) else [])
                if isinstance(o, dict) and o.get("gate")
            )
            started[action] = Move(
                kind.move,
                event.seq,
                event.ts,
                event.actor,
                str(event.get("from_stage") or ""),
                str(event.get("to_stage") or ""),
                _int(event.get("from_percent")),
                _int(event.get("to_percent")),
                str(event.get("reason") or ""),
                "pending",
                overrides=overrides,
                override_note=str(event.get("override_note") or ""),
            )
            order.append(action)
        elif action in started and started[action].outcome == "pending":
            move = started[action]
            live = event.get("live_s")
            started[action] = replace(
                move,
                outcome=kind.phase or "done",
                ended_at=event.ts,
                live_s=float(live) if isinstance(live, int | float) else None,
                effect=str(event.get("effect") or ""),
                error=str(event.get("error") or ""),
            )
    return [started[a] for a in order]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- readings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One reading of a gate or trigger: its value and verdict at one evaluation."""

    at: datetime
    value: float | None
    verdict: str
    interval: tuple[float, float] | None = None


Key = tuple[str, str, str]  # (GATE or TRIGGER, id, stage)


def _at(point: Point) -> datetime:
    return point.at


def interval_text(pair: tuple[float, float] | None) -> str:
    """An interval as the report and the console write it: `84.2–85.5`, `—` for none, and
    one that could not be computed (a bound that is NaN in the evidence) said so, never
    `nan–nan`.

    >>> interval_text((84.21, 85.5)), interval_text(None), interval_text((math.nan, 1.0))
    ('84.21–85.5', '—', 'no interval (NaN)')
    >>> interval_text((-math.inf, 2.0))
    '-∞–2'
    """
    if pair is None:
        return "—"
    lo, hi = pair
    if math.isnan(lo) or math.isnan(hi):
        return "no interval (NaN)"
    return f"{value_text(lo)}–{value_text(hi)}"


def value_text(x: float) -> str:
    """A reading's value in four significant digits; ±∞ as such."""
    return ("∞" if x > 0 else "-∞") if math.isinf(x) else f"{x:.4g}"


class Readings(EvidenceTail):
    """The evidence followed as record/evidence_tail.EvidenceTail follows it (the new lines
    only, runs folded), keeping besides every line as a reading: a run's line is re-appended
    as it grows, each with its value at its `last`, so the lines of a run are a series (what
    a folded run, one value, cannot show). A console polls it every few seconds; a report
    reads it once."""

    def __init__(self, source: Path | LineFeed, key: bytes | None = None) -> None:
        self._points: dict[Key, dict[datetime, Point]] = {}
        # Each series in time order, sorted when first asked for after it changed: the
        # console asks for every gate's and trigger's every 5 s, on its loop, and a week of
        # one gate flapping is ~20,000 points to sort at each ask.
        self._in_order: dict[Key, list[Point]] = {}
        super().__init__(source, key)

    def _forget(self) -> None:
        super()._forget()
        self._points, self._in_order, self.skipped = {}, {}, 0

    def _take(self, run: Run) -> None:
        super()._take(run)
        value = run.value if run.value is not None and math.isfinite(run.value) else None
        key = (run.what, run.name, run.stage)
        self._in_order.pop(key, None)
        series = self._points.setdefault(key, {})
        series[run.last] = Point(run.last, value, run.verdict, run.interval)
        if run.count == 1 or run.first not in series:
            # A run's first line is its first evaluation; a crash may have lost it: the run
            # still began with this verdict then.
            series.setdefault(run.first, Point(run.first, value, run.verdict, run.interval))

    def points(
        self,
        what: str,
        name: str,
        stage: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Point]:
        """The readings of one gate or trigger (in one stage, or any), oldest first."""
        found: list[Point] = []
        keys = 0
        for key, series in self._points.items():
            w, n, s = key
            if w != what or n != name or (stage is not None and s != stage):
                continue
            ordered = self._in_order.get(key)
            if ordered is None:
                ordered = self._in_order[key] = sorted(series.values(), key=_at)
            lo = 0 if since is None else bisect_left(ordered, since, key=_at)
            hi = len(ordered) if until is None else bisect_right(ordered, until, key=_at)
            found.extend(ordered[lo:hi])
            keys += 1
        if keys > 1:  # one series per stage: more than one (stage None) interleave
            found.sort(key=_at)
        return found

    def forget_before(self, at: datetime) -> None:
        """Drop readings and runs that ended before `at` (a console keeps only what the
        current and the previous stage can show)."""
        self._in_order.clear()
        for key, series in list(self._points.items()):
            kept = {t: p for t, p in series.items() if t >= at}
            if kept:
                self._points[key] = kept
            else:
                del self._points[key]
        self.trim(lambda r: r.last >= at)

    def ordered_runs(self) -> list[Run]:
        """The runs kept, oldest first (sorted once per change, not once per call)."""
        return list(self.runs)


# -- the hold over time ----------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    """A moment a gate's PASS streak broke, so the hold counted from zero again."""

    at: datetime
    gate: str
    reason: str


@dataclass(frozen=True)
class Gap:
    """A stretch with no evaluation of the stage's gates longer than its max_gap."""

    start: datetime
    end: datetime
    accepted_by: str = ""  # who accepted it (`cutover accept-gap`), with their note
    note: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _gate_runs(runs: Iterable[Run], stage: str, start: datetime, end: datetime) -> list[Run]:
    return sorted(
        (
            r
            for r in runs
            if r.what == GATE and r.stage == stage and r.last >= start and r.first <= end
        ),
        key=lambda r: (r.first, r.run),
    )


def gaps(
    runs: Iterable[Run],
    stage: Stage,
    start: datetime,
    end: datetime,
    accepted: Sequence[replayed.AcceptedGap] = (),
) -> list[Gap]:
    """Stretches of the visit [start, end] in which nothing evaluated any of the stage's
    gates for longer than its max_gap, each with the note that accepted it, if one did."""
    if not stage.gates:
        return []
    limit = timedelta(seconds=stage.max_gap_s)
    found: list[Gap] = []
    cursor = start
    for run in _gate_runs(runs, stage.id, start, end):
        if run.first - cursor > limit:
            found.append(_gap(cursor, run.first, accepted))
        cursor = max(cursor, run.last)
    if end - cursor > limit:
        found.append(_gap(cursor, end, accepted))
    return found


def _gap(start: datetime, end: datetime, accepted: Sequence[replayed.AcceptedGap]) -> Gap:
    for a in accepted:
        if a.start <= start and end <= a.end:
            return Gap(start, end, a.actor, a.note)
    return Gap(start, end)


def restarts(
    runs: Iterable[Run],
    stage: Stage,
    start: datetime,
    end: datetime,
    accepted: Sequence[replayed.AcceptedGap] = (),
) -> list[Restart]:
    """Every moment in [start, end] that a gate's PASS streak broke (a FAIL, a WAIT, or a
    gap no note accepted), oldest first. Before a gate's first PASS nothing was counting,
    so nothing restarts: the stage's start is no restart."""
    limit = timedelta(seconds=stage.max_gap_s)
    out: list[Restart] = []
    mine = _gate_runs(runs, stage.id, start, end)
    for gate in stage.gates:
        counting = False
        cursor: datetime | None = None
        for run in (r for r in mine if r.name == gate.id):
            first = max(run.first, start)
            broken = counting and cursor is not None and first - cursor > limit
            if broken and not _gap(cursor, first, accepted).accepted_by:
                silent = humanize((first - cursor).total_seconds())
                out.append(Restart(cursor, gate.id, f"a {silent} gap (no evaluation)"))
                counting = False
            if run.verdict in OK_VERDICTS:
                counting = True
            elif counting:
                why = f" ({run.reason})" if run.reason else ""
                out.append(Restart(first, gate.id, f"{run.verdict.upper()}{why}"))
                counting = False
            cursor = run.last if cursor is None else max(cursor, run.last)
        silent_end = counting and cursor is not None and end - cursor > limit
        if silent_end and not _gap(cursor, end, accepted).accepted_by:
            silent = humanize((end - cursor).total_seconds())
            out.append(Restart(cursor, gate.id, f"no evaluation for {silent}"))
    out.sort(key=lambda r: (r.at, r.gate))
    return out


# -- triggers over time ----------------------------------------------------------------------

STATES = ("quiet", "pending", "suspect", "fired", "unknown")


def trigger_states(
    runs: Iterable[Run], trigger: Trigger, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """A trigger's state over [start, end] by the evidence, as (from, to, state) spans:
    quiet, pending (its condition holds, not yet for `for`), suspect (past the threshold as
    a point, not as an interval), fired, unknown. The evidence records the condition, so
    `for` is applied here as the console applies it."""
    mine = sorted(
        (r for r in runs if r.what == TRIGGER and r.name == trigger.id),
        key=lambda r: (r.first, r.run),
    )
    spans: list[tuple[datetime, datetime, str]] = []
    holding_since: datetime | None = None
    for run in mine:
        if run.verdict == "quiet":
            holding_since = None
        if run.last < start or run.first > end:
            if run.verdict == "fired" and holding_since is None:
                holding_since = run.first
            continue
        a, b = max(run.first, start), min(run.last, end)
        if run.verdict == "fired":
            if holding_since is None:
                holding_since = run.first
            fires_at = holding_since + timedelta(seconds=trigger.for_s)
            if fires_at > a:
                spans.append((a, min(b, fires_at), "pending"))
            if fires_at < b:
                spans.append((max(a, fires_at), b, "fired"))
        elif run.verdict == "unknown":
            spans.append((a, b, "suspect" if _suspect(trigger.check, run) else "unknown"))
        else:
            spans.append((a, b, "quiet" if run.verdict == "quiet" else run.verdict))
    return spans


def _suspect(check: Comparison | None, run: Run) -> bool:
    if check is None or run.value is None or check.op in ("==", "!=") or run.interval is None:
        return False
    return decide(check.op, run.value, run.value, check.value) is True
