"""What `cutover report` says, gathered from the record alone (journal, evidence, snapshots;
no database, no platform): a summary, each stage visit with its hold as the evidence judged
it, its restarts, gaps, sign-offs, overrides, checkpoints and comparisons, the series its
charts draw, and the journal's head and chain. Deterministic: "now" is the record's last
entry, never the clock, so the same record gives the same report."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cutover.judge.baselines import baseline_stage
from cutover.judge.digest import person
from cutover.judge.hold import Hold, judge_hold
from cutover.judge.reading import Unreadable, read_number
from cutover.judge.session import Session
from cutover.judge.verdicts import SYMBOL
from cutover.record import snapshots
from cutover.record.events import Kind, known
from cutover.record.evidence import GATE, SKEW, Run, from_the_future, until_now
from cutover.record.journal import Event
from cutover.record.state import AcceptedGap, replay
from cutover.report.source import UNREADABLE, RecordSource
from cutover.report.timeline import (
    Gap,
    Move,
    Point,
    Readings,
    Restart,
    Visit,
    gaps,
    moves,
    restarts,
    trigger_states,
    visits,
)
from cutover.runbook.durations import humanize
from cutover.runbook.model import Comparison, Gate, Runbook, Stage, Trigger
from cutover.sources.results import QueryResult


@dataclass(frozen=True)
class Signed:
    step: str
    actor: str
    at: datetime
    note: str
    override: bool
    checklist: bool = False  # a step of the rollback checklist


@dataclass(frozen=True)
class Overridden:
    gate: str
    why: str  # why it was waiting
    actor: str
    at: datetime
    note: str


@dataclass(frozen=True)
class Checkpoint:
    label: str
    at: datetime | None
    queries: int
    failed: tuple[str, ...]  # query ids whose result was an error
    damaged: str = ""


@dataclass(frozen=True)
class GateFacts:
    gate: Gate
    words: str  # the comparison in words: "success_rate_pct ≥ 95 (95 % interval)"
    threshold: float | None  # None: a trend (its threshold is a slope, not a value)
    points: list[Point]
    latest: Run | None  # the visit's last evaluation
    baseline: str = ""  # "canary exit 2026-11-20 09:00Z: 97.0"
    baseline_value: float | None = None


@dataclass(frozen=True)
class TriggerFacts:
    trigger: Trigger
    spans: list[tuple[datetime, datetime, str]]
    points: list[Point]


@dataclass(frozen=True)
class Noted:
    """A trigger raised or cleared, or a gap accepted, by a person with a note."""

    what: str
    actor: str
    at: datetime
    note: str


@dataclass(frozen=True)
class StageFacts:
    visit: Visit
    stage: Stage
    end: datetime  # left, or the record's last entry
    hold: Hold
    restarts: list[Restart]
    gaps: list[Gap]
    signoffs: list[Signed]
    overrides: list[Overridden]
    checkpoints: list[Checkpoint]
    gates: list[GateFacts]
    triggers: list[TriggerFacts]
    notes: list[Noted]
    moves: list[Move]  # every move in this visit's window or the one before (the charts)
    percent: list[tuple[datetime, int]]  # the flag's percent as the journal set it
    observed: list[tuple[datetime, float]]  # the share traffic showed (flag.observed)
    window_start: datetime  # the charts' axis: the visit, from the one before's start


@dataclass(frozen=True)
class Summary:
    title: str
    stages_passed: list[str]
    current: str
    outcome: str
    people: list[tuple[str, int]]  # person, how many journal entries
    started: datetime | None
    ended: datetime | None
    rollbacks: list[Move]


@dataclass(frozen=True)
class Chain:
    ok: bool
    events: int
    message: str
    head_seq: int | None
    head_hash: str | None
    keyed: bool


@dataclass(frozen=True)
class Report:
    runbook: Runbook
    as_of: datetime | None
    summary: Summary
    stages: list[StageFacts]
    chain: Chain
    warnings: list[str] = field(default_factory=list)
    # The session's redactor: every text from the record passes through it on its way out.
    redact: Callable[[str], str] = field(default=str, repr=False)


def comparison_words(check: Comparison) -> str:
    """A comparison as the runbook says it, in one line.

    >>> comparison_words(Comparison("q", ">=", 95, column="rate", confidence=0.95,
    ...                             successes="ok", trials="all"))
    'rate ≥ 95 (ok/all, 95 % interval)'
    """
    if check.trend is not None:
        t = check.trend
        what = f"{check.column} slope {SYMBOL[t.op]} {t.slope:g}/h over {humanize(t.over_s)}"
    else:
        what = "rows" if check.row_count else check.column or check.successes or check.query
        what = f"{what} {SYMBOL[check.op]} {check.value:g}"
    extra = []
    if check.successes and check.trials:
        level = check.confidence or 0.95
        extra.append(f"{check.successes}/{check.trials}, {level * 100:g} % interval")
    if check.against is not None:
        other = check.against.baseline or f"row {check.against.row}"
        margin = f" − {check.margin:g}" if check.margin else ""
        extra.append(f"against {other}{margin}")
    return what + (f" ({'; '.join(extra)})" if extra else "")


def build(
    session: Session,
    *,
    stage: str | None = None,
    every: bool = False,
    now: datetime | None = None,
) -> Report:
    """The report of the current visit (default), every visit of `stage`, or `every` visit.
    `now` (the clock by default) only sets aside evidence dated after it: a host whose clock
    ran ahead must not stretch the cutover, its current stage and every axis to that date."""
    runbook = session.runbook
    source = RecordSource(session)
    read = source.journal()
    verified = source.verify()
    evidence = source.readings()
    now = now or datetime.now(UTC)
    events, moved = placed(read.events, now)
    ahead = from_the_future(evidence.ordered_runs(), now)
    runs = until_now(evidence.ordered_runs(), now)
    ends = [e.ts for e in events] + [r.last for r in runs]
    as_of = max(ends) if ends else None
    all_visits = visits(runbook, events)
    all_moves = moves(events)
    current = replay(runbook, events)
    if stage is not None:
        chosen = [v for v in all_visits if v.stage == stage]
    elif every:
        chosen = list(all_visits)
    else:
        chosen = all_visits[-1:]
    stages = [
        _stage(runbook, v, all_visits, events, evidence, runs, all_moves, source, as_of)
        for v in chosen
    ]
    last = events[-1] if events else None
    chain = Chain(
        verified.ok,
        verified.events,
        verified.message,
        last.seq if last else None,
        last.hash if last else None,
        source.keyed,
    )
    warnings = list(read.warnings)
    if evidence.skipped:
        warnings.append(f"{evidence.skipped} evidence line(s) were not evidence and were skipped")
    for recorded, event in moved:
        warnings.append(
            f"journal event {event.seq} ({event.kind} by {person(event.actor)}) is dated "
            f"{_at(recorded)}, from the future (a clock ahead: it was appended before entries "
            f"dated earlier, or after this report was made); it is placed at {_at(event.ts)} "
            "by its place in the journal, so it stretches no duration and no chart"
        )
    if ahead:
        latest = max(r.last for r in ahead)
        warnings.append(
            f"{len(ahead)} evidence run(s) dated after this report was made (up to "
            f"{_at(latest)}: a clock ahead) were left out"
        )
    return Report(
        runbook,
        as_of,
        _summary(runbook, events, all_moves, current, as_of),
        stages,
        chain,
        warnings,
        session.redact,
    )


def placed(
    events: Sequence[Event], now: datetime
) -> tuple[list[Event], list[tuple[datetime, Event]]]:
    """The journal's events with those dated after the record's honest end placed at the
    entry before them, and those (their recorded time, the event as placed). An event is
    from the future when it is dated later than an event appended after it, or than `now`,
    by more than a clock's honest skew: a host whose clock ran ahead wrote it. The journal
    is in the order things were done, so the entry before it is when it was done at the
    earliest; placed there it stretches no duration, visit or axis (the first event, with
    none before it, goes to the earliest time after it)."""
    late = [False] * len(events)
    limit = now + SKEW
    for index in range(len(events) - 1, -1, -1):
        if events[index].ts > limit:
            late[index] = True
        else:
            limit = min(limit, events[index].ts + SKEW)
    if not any(late):
        return list(events), []
    honest = [e.ts for e, bad in zip(events, late, strict=True) if not bad]
    out: list[Event] = []
    moved: list[tuple[datetime, Event]] = []
    before: datetime | None = None
    for event, bad in zip(events, late, strict=True):
        if not bad:
            before = event.ts
            out.append(event)
            continue
        at = before if before is not None else min(honest, default=now)
        out.append(replace(event, ts=at))
        moved.append((event.ts, out[-1]))
    return out, moved


def _summary(
    runbook: Runbook, events: Sequence[Event], done: list[Move], current, as_of: datetime | None
) -> Summary:
    passed: list[str] = []
    for move in done:
        if move.move == "advance" and move.outcome == "done" and move.from_stage not in passed:
            passed.append(move.from_stage)
    if current.completed is not None and current.stage_id not in passed:
        passed.append(current.stage_id)
    counts: dict[str, int] = {}
    for event in events:
        if known(event.kind) is not Kind.TORN:
            who = person(event.actor)
            counts[who] = counts.get(who, 0) + 1
    stage = runbook.stage(current.stage_id)
    last_done = next((m for m in reversed(done) if m.outcome == "done"), None)
    if current.completed is not None:
        outcome = (
            f"complete: {person(current.completed.actor)} completed it at "
            f"{_at(current.completed.at)}"
        )
    elif current.pending is not None:
        p = current.pending
        outcome = f"a {p.move} to {p.to_percent} % is in flight since {_at(p.at)} (by {p.actor})"
    elif last_done is not None and last_done.move == "rollback":
        outcome = f"rolled back to {stage.id} ({current.percent} %) at {_at(last_done.ended_at)}"
    else:
        outcome = f"in progress at {stage.id} ({current.percent} %)"
    return Summary(
        runbook.title,
        passed,
        f"{stage.id} ({stage.title}, {current.percent} %)",
        outcome,
        sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        events[0].ts if events else None,
        # Not complete: the cutover lasts to the record's last entry (the evidence goes on).
        current.completed.at if current.completed else as_of,
        [m for m in done if m.move == "rollback"],
    )


def _at(at: datetime | None) -> str:
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M:%S}Z"


def _stage(
    runbook: Runbook,
    visit: Visit,
    every: list[Visit],
    events: Sequence[Event],
    evidence: Readings,
    runs: list[Run],
    all_moves: list[Move],
    source: RecordSource,
    as_of: datetime | None,
) -> StageFacts:
    stage = runbook.stage(visit.stage)
    end = visit.left_at or as_of or visit.entered_at
    index = every.index(visit)
    window_start = every[index - 1].entered_at if index > 0 else visit.entered_at
    accepted = [
        AcceptedGap(g.start, g.end, g.actor, g.note)
        for g in _accepted_gaps(events)
        if g.end >= visit.entered_at and g.start <= end
    ]
    hold = judge_hold(
        stage=stage.id,
        gates=[g.id for g in stage.gates],
        required_s=stage.hold_s,
        entered_at=visit.entered_at,
        now=end,
        runs=[r for r in runs if r.first <= end],
        max_gap_s=stage.max_gap_s,
        accepted=[(g.start, g.end) for g in accepted],
    )
    in_visit = [e for e in events if visit.entered_at <= e.ts <= end]
    gate_facts = []
    for gate in stage.gates:
        mine = [
            r
            for r in runs
            if r.what == GATE and r.name == gate.id and r.stage == stage.id
            and visit.entered_at <= r.last and r.first <= end
        ]  # fmt: skip
        baseline, value = baseline_of(runbook, stage, gate.check, source, visit.entered_at)
        gate_facts.append(
            GateFacts(
                gate,
                comparison_words(gate.check),
                None if gate.check.trend is not None else gate.check.value,
                evidence.points(GATE, gate.id, stage.id, window_start, end),
                max(mine, key=lambda r: r.last, default=None),
                baseline,
                value,
            )
        )
    trigger_facts = [
        TriggerFacts(
            t,
            trigger_states(runs, t, window_start, end),
            evidence.points("trigger", t.id, None, window_start, end),
        )
        for t in runbook.triggers
        if t.check is not None and (not t.stages or stage.id in t.stages)
    ]
    return StageFacts(
        visit=visit,
        stage=stage,
        end=end,
        hold=hold,
        restarts=restarts(runs, stage, visit.entered_at, end, accepted),
        gaps=gaps(runs, stage, visit.entered_at, end, accepted),
        signoffs=_signoffs(in_visit, visit),
        overrides=_overrides(in_visit, stage.id),
        checkpoints=_checkpoints(source, visit),
        gates=gate_facts,
        triggers=trigger_facts,
        notes=_notes(in_visit),
        moves=[m for m in all_moves if window_start <= m.at <= end],
        percent=_percent(every, window_start, end),
        observed=_observed(runbook, source, evidence, window_start, end),
        window_start=window_start,
    )


def _accepted_gaps(events: Sequence[Event]) -> list[AcceptedGap]:
    found = []
    for event in events:
        if known(event.kind) is not Kind.GAP_ACCEPTED:
            continue
        try:
            start = datetime.fromisoformat(event.get("gap_start"))
            end = datetime.fromisoformat(event.get("gap_end"))
        except (TypeError, ValueError):
            continue
        found.append(AcceptedGap(start, min(end, event.ts), event.actor, event.get("note") or ""))
    return found


def _signoffs(events: Sequence[Event], visit: Visit) -> list[Signed]:
    out = []
    for e in events:
        if known(e.kind) is not Kind.SIGNOFF:
            continue
        checklist = e.get("checklist") == "rollback"
        if not checklist and (e.get("stage"), e.get("visit")) != (visit.stage, visit.visit):
            continue
        out.append(
            Signed(
                str(e.get("step")),
                e.actor,
                e.ts,
                str(e.get("note") or ""),
                bool(e.get("override")),
                checklist,
            )
        )
    return out


def _overrides(events: Sequence[Event], stage: str) -> list[Overridden]:
    """Gates an advance (or the completion) went past while they WAITed, with the note."""
    out = []
    for e in events:
        kind = known(e.kind)
        if kind not in (Kind.ADVANCE_INTENT, Kind.COMPLETE):
            continue
        if kind is Kind.ADVANCE_INTENT and e.get("from_stage") != stage:
            continue
        listed = e.get("overrides")
        for o in listed if isinstance(listed, list) else []:
            if isinstance(o, dict) and o.get("gate"):
                why, note = str(o.get("reason") or ""), str(e.get("override_note") or "")
                out.append(Overridden(str(o["gate"]), why, e.actor, e.ts, note))
    return out


def _notes(events: Sequence[Event]) -> list[Noted]:
    words = {
        Kind.TRIGGER_RAISED: "raised {trigger}",
        Kind.TRIGGER_CLEARED: "cleared {trigger}",
        Kind.GAP_ACCEPTED: "accepted the gap {gap_start} – {gap_end}",
        Kind.CHAIN_ACCEPTED: "accepted a break in the journal's chain",
        Kind.RECONCILE: "reconciled: the flag read {flag_percent} %",
    }
    out = []
    for e in events:
        kind = known(e.kind)
        if kind in words:
            fields = {k: e.get(k) for k in ("trigger", "gap_start", "gap_end", "flag_percent")}
            out.append(Noted(words[kind].format(**fields), e.actor, e.ts, str(e.get("note") or "")))
    return out


def _checkpoints(source: RecordSource, visit: Visit) -> list[Checkpoint]:
    labels = source.snapshot_labels(visit.stage, visit.visit)

    def order(label: str) -> tuple[int, int]:
        if label == snapshots.ENTRY:
            return (0, 0)
        if label == snapshots.EXIT:
            return (2, 0)
        tail = label.rpartition("-")[2]
        return (1, int(tail) if tail.isdigit() else 0)

    out = []
    for label in sorted(labels, key=order):
        try:
            snap = source.snapshot(visit.stage, visit.visit, label)
        except UNREADABLE as exc:
            name = f"{visit.stage}.{visit.visit}.{label}"
            why = str(exc) if not source.contents else f"snapshot {name} cannot be read"
            out.append(Checkpoint(label, None, 0, (), why))
            continue
        failed = tuple(sorted(q for q, r in snap.results.items() if r.error))
        out.append(Checkpoint(label, snap.at, len(snap.results), failed))
    return out


def _value(check: Comparison, result: QueryResult) -> float | None:
    try:
        if check.successes and check.trials:
            ok = read_number(check.query, result, check.successes, check.row)
            n = read_number(check.query, result, check.trials, check.row)
            scale = 100.0 if check.value > 1 or check.against is not None else 1.0
            return None if n <= 0 else ok / n * scale
        if check.column:
            return read_number(check.query, result, check.column, check.row)
    except Unreadable:
        return None
    return None


def baseline_of(
    runbook: Runbook, stage: Stage, check: Comparison, source: RecordSource, before: datetime
) -> tuple[str, float | None]:
    """What a comparison against a stage's exit compared with during this visit: that
    stage's latest exit snapshot taken before the visit began."""
    if check.against is None or check.against.baseline is None:
        return "", None
    name = baseline_stage(runbook, stage, check.against.baseline)
    if name is None:
        return "no previous stage", None
    taken = [s for s in source.exits(name) if s.at is not None and s.at <= before]
    if not taken:
        return f"{name} has no exit snapshot from before this visit", None
    snap = taken[-1]
    result = snap.results.get(check.query)
    value = _value(check, result) if result is not None else None
    shown = "unreadable" if value is None else f"{value:.4g}"
    return f"{name} exit {_at(snap.at)}: {shown}", value


def _percent(every: list[Visit], start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    steps = [(v.entered_at, v.percent) for v in every if v.entered_at <= end]
    before = [s for s in steps if s[0] <= start]
    kept = ([(start, before[-1][1])] if before else []) + [s for s in steps if s[0] > start]
    if kept and kept[-1][0] < end:
        kept.append((end, kept[-1][1]))
    return kept


def _observed(
    runbook: Runbook, source: RecordSource, evidence: Readings, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """The share traffic showed: the observed query's column in every snapshot of the
    window, and any gate's or trigger's readings of that same column."""
    spec = runbook.flag.observed
    if spec is None:
        return []
    seen: dict[datetime, float] = {}
    for snap in source.between(start, end):
        result = snap.results.get(spec.query)
        if snap.at is None or result is None:
            continue
        try:
            value = read_number(spec.query, result, spec.column)
        except Unreadable:
            continue
        if math.isfinite(value):
            seen[snap.at] = value
    readers = [
        (GATE, g.id) for s in runbook.stages for g in s.gates
        if g.check.query == spec.query and g.check.column == spec.column and not g.check.against
    ] + [
        ("trigger", t.id) for t in runbook.triggers
        if t.check and t.check.query == spec.query and t.check.column == spec.column
    ]  # fmt: skip
    for what, name in readers:
        for p in evidence.points(what, name, None, start, end):
            if p.value is not None:
                seen[p.at] = p.value
    return sorted(seen.items())
