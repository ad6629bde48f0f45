"""A stage's hold, judged over the evidence: met only when every gate of the stage has been
PASS continuously for the trailing `hold`, with no FAIL, no WAIT and no gap between two
evaluations longer than `max_gap`. Deliberately fail closed: if nobody and nothing
watched, the hold did not hold. Pure: runs in, a judgement out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cutover.record.evidence import GATE, Run, from_the_future, until_now
from cutover.runbook.durations import humanize
from cutover.runbook.frozen import frozen

DEFAULT_MAX_GAP_S = 3600.0
# "n/a": an optional gate whose query lacks a column it needs; it does not hold a stage.
OK_VERDICTS = frozenset({"pass", "n/a"})


@frozen
class GateHold:
    gate: str
    held_s: float  # PASS continuously, by the evidence, up to now
    since: datetime | None  # when the current streak began (None: no streak now)
    restarted_at: datetime | None  # when the last restart happened
    restart_reason: str | None  # why: a FAIL, a WAIT, a gap
    gap: tuple[datetime, datetime] | None = None  # the gap behind the restart, if a gap


@frozen
class Hold:
    required_s: float
    in_stage_s: float
    held_s: float
    since: datetime | None
    restarted_at: datetime | None
    restart_reason: str | None
    gates: tuple[GateHold, ...] = ()
    held_by: tuple[str, ...] = ()  # what stops the hold completing (a medium trigger…)
    future: int = 0  # evaluations ignored for being dated after now (a clock ahead)

    @property
    def gap(self) -> tuple[datetime, datetime] | None:
        """The latest gap in the evidence that restarted any gate (what accept-gap forgives)."""
        gaps = [g.gap for g in self.gates if g.gap is not None]
        return max(gaps, key=lambda g: g[1], default=None)

    @property
    def met(self) -> bool:
        if self.required_s <= 0:
            return not self.held_by
        return self.held_s >= self.required_s and not self.held_by

    @property
    def left_s(self) -> float:
        return max(0.0, self.required_s - self.held_s)

    def describe(self) -> str:
        """One line for the header, `status` and the advance refusal.

        >>> from datetime import UTC
        >>> at = datetime(2026, 11, 20, 2, 14, tzinfo=UTC)
        >>> Hold(86400, 90000, 46920, at, at, "a 2h 10m gap (no evaluation)").describe()
        'held 13h 2m of 1d; restarted 02:14Z after a 2h 10m gap (no evaluation)'
        >>> Hold(0, 5, 5, None, None, None).describe()
        'no hold'
        """
        if self.required_s <= 0:
            text = "no hold"
        elif self.met:
            text = f"hold ✓ {humanize(self.required_s)} met"
        else:
            text = f"held {humanize(self.held_s)} of {humanize(self.required_s)}"
        if self.restart_reason and not self.met and self.restarted_at is not None:
            text += f"; restarted {self.restarted_at:%H:%MZ} after {self.restart_reason}"
        if self.held_by:
            text += "; held back by " + ", ".join(self.held_by)
        if self.future:
            many = "s" if self.future > 1 else ""
            text += f"; ignored {self.future} evaluation{many} dated after now (a clock ahead?)"
        return text


def judge_gate(
    gate: str,
    stage: str,
    runs: Iterable[Run],
    entered_at: datetime,
    now: datetime,
    max_gap_s: float,
    accepted: Sequence[tuple[datetime, datetime]] = (),
) -> GateHold:
    """How long `gate` has been PASS without a break, by the evidence of this stage visit."""
    mine = sorted(
        (r for r in runs if r.what == GATE and r.name == gate and r.stage == stage),
        key=lambda r: r.first,
    )
    mine = [r for r in mine if r.last >= entered_at]
    max_gap = timedelta(seconds=max_gap_s)
    restart_at: datetime = entered_at
    reason: str | None = None
    restarted: datetime | None = None
    # The latest FAIL or WAIT breaks the streak: it can only start again after it.
    for run in mine:
        if run.verdict not in OK_VERDICTS and run.last >= restart_at:
            restart_at = run.last
            restarted = run.last
            said = f" ({run.reason})" if run.reason else ""  # never "WAIT ()"
            reason = f"{run.verdict.upper()}{said}"
    # PASS coverage after that, joined across gaps no longer than max_gap (or accepted).
    spans = sorted(
        (max(r.first, restart_at), r.last)
        for r in mine
        if r.verdict in OK_VERDICTS and r.last >= restart_at
    )
    since: datetime | None = None
    end: datetime | None = None
    gap: tuple[datetime, datetime] | None = None
    # The stretch from the restart point (entry, or the last bad verdict) to the first PASS
    # is a gap like any other.
    cursor = restart_at
    for first, last in spans:
        gap_end = first
        if gap_end - cursor > max_gap and not _accepted(cursor, gap_end, accepted):
            restarted = gap_end
            reason = f"a {humanize((gap_end - cursor).total_seconds())} gap (no evaluation)"
            gap = (cursor, gap_end)
            since = None
        if since is None:
            since = first
        cursor = max(cursor, last)
        end = cursor
    if end is None:
        silent = (restart_at, now) if now - restart_at > max_gap else None
        return GateHold(gate, 0.0, None, restarted, reason or "no PASS evaluation yet", silent)
    if now - end > max_gap and not _accepted(end, now, accepted):
        silence = humanize((now - end).total_seconds())
        return GateHold(gate, 0.0, None, end, f"no evaluation for {silence}", (end, now))
    assert since is not None
    return GateHold(gate, max(0.0, (now - since).total_seconds()), since, restarted, reason, gap)


def last_fail(runs: Iterable[Run], gate: str, stage: str, since: datetime) -> Run | None:
    """The latest FAIL of `gate` in `stage` that lasted until `since` or later: an override
    is for a gate that cannot decide, never for one that decided no within the hold.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def run(verdict, hours):
    ...     end = t + timedelta(hours=hours)
    ...     return Run("r", GATE, "g", "s", verdict, None, None, "", "", t, end, 1, "")
    >>> last_fail([run("fail", 1), run("wait", 2)], "g", "s", t).last == t + timedelta(hours=1)
    True
    >>> last_fail([run("fail", 1)], "g", "s", t + timedelta(hours=2)) is None
    True
    """
    fails = [
        r
        for r in runs
        if r.what == GATE and r.name == gate and r.stage == stage
        and r.verdict == "fail" and r.last >= since
    ]  # fmt: skip
    return max(fails, key=lambda r: r.last, default=None)


def _accepted(
    start: datetime, end: datetime, accepted: Sequence[tuple[datetime, datetime]]
) -> bool:
    return any(a <= start and end <= b for a, b in accepted)


def judge_hold(
    *,
    stage: str,
    gates: Sequence[str],
    required_s: float,
    entered_at: datetime | None,
    now: datetime,
    runs: Iterable[Run],
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    accepted: Sequence[tuple[datetime, datetime]] = (),
    held_by: Sequence[str] = (),
) -> Hold:
    """The stage's hold: the shortest streak among its gates (time in the stage when it has
    no gates), and why it last restarted."""
    if entered_at is None:
        return Hold(
            required_s, 0.0, 0.0, None, None, "the stage has not started", (), tuple(held_by)
        )
    in_stage = max(0.0, (now - entered_at).total_seconds())
    if not gates:
        return Hold(required_s, in_stage, in_stage, entered_at, None, None, (), tuple(held_by))
    runs = list(runs)
    future = len(from_the_future(runs, now))
    runs = until_now(runs, now)
    per_gate = tuple(
        judge_gate(g, stage, runs, entered_at, now, max_gap_s, accepted) for g in gates
    )
    weakest = min(per_gate, key=lambda g: g.held_s)
    latest = max(
        (g for g in per_gate if g.restarted_at is not None),
        key=lambda g: g.restarted_at,  # type: ignore[arg-type,return-value]
        default=None,
    )
    reason = None
    restarted = None
    if latest is not None:
        restarted = latest.restarted_at
        reason = f"{latest.gate}: {latest.restart_reason}"
    elif weakest.restart_reason:
        reason = f"{weakest.gate}: {weakest.restart_reason}"
    return Hold(
        required_s,
        in_stage,
        min(weakest.held_s, in_stage),
        weakest.since,
        restarted,
        reason,
        per_gate,
        tuple(held_by),
        future,
    )
