"""While you were away: what changed since a time (this operator's last session, or `--since`):
verdict flips, triggers fired and cleared, gaps in the evidence, other people's actions and
sign-offs, hold progress with an ETA, and how much more data a waiting gate needs. Pure
given the journal's events and the evidence; the last-seen marker is a small file."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cutover.base.inert import inert
from cutover.judge.gates import more_trials_needed
from cutover.judge.hold import Hold
from cutover.record.events import Kind, known, move_words
from cutover.record.evidence import GATE, Run
from cutover.record.journal import Event
from cutover.record.store.files import last_seen, mark_seen, seen_path  # noqa: F401
from cutover.runbook.durations import humanize
from cutover.runbook.model import Runbook, Stage

MAX_LINES = 12  # per section; the rest is counted, not listed


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


def _hm(at: datetime) -> str:
    return f"{at.astimezone(UTC):%m-%d %H:%MZ}"


def person(actor: str) -> str:
    """The login behind an actor ("alice from 10.0.0.7" → "alice")."""
    return actor.split(" from ", 1)[0]


# -- the marker: kept by the store (record/store); these names stay for their callers --------

# -- the sections -------------------------------------------------------------------------


def _capped(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_LINES:
        return tuple(lines)
    return (*lines[: MAX_LINES - 1], f"… and {len(lines) - MAX_LINES + 1} more")


def actions_since(
    events: Iterable[Event], since: datetime, me: str, *, mine: bool = False
) -> Section:
    """Other people's (and the watcher's) actions and sign-offs since `since`; with `mine`
    (a time asked for with --since), one's own too, marked: nothing that happened in the
    window is left out."""
    lines = []
    for event in events:
        own = person(event.actor) == me
        if event.ts <= since or (own and not mine):
            continue
        kind = known(event.kind)
        if kind is None or kind is Kind.TORN:
            continue
        who = f"{event.actor} (you)" if own else event.actor
        if kind is Kind.SIGNOFF:
            note = f": {inert(event.get('note'))}" if event.get("note") else ""
            mark = " (OVERRIDE)" if event.get("override") else ""
            lines.append(
                f"{_hm(event.ts)} {who} signed {event.get('step')}{mark} "
                f"({event.get('stage')}){note}"
            )
        elif kind.phase == "intent":
            why = f": {event.get('reason')}" if event.get("reason") else ""
            lines.append(
                f"{_hm(event.ts)} {who} started {move_words(kind.move)} to "
                f"{event.get('to_percent')} % ({event.get('to_stage')}){why}"
            )
        elif kind.phase in ("done", "failed"):
            outcome = "verified" if kind.phase == "done" else f"FAILED: {event.get('error')}"
            lines.append(f"{_hm(event.ts)} {move_words(kind.move)} {outcome}")
        elif kind is Kind.TRIGGER_RAISED:
            lines.append(
                f"{_hm(event.ts)} {who} RAISED {event.get('trigger')}: {inert(event.get('note'))}"
            )
        elif kind is Kind.TRIGGER_CLEARED:
            lines.append(
                f"{_hm(event.ts)} {who} cleared {event.get('trigger')}: {inert(event.get('note'))}"
            )
        elif kind is Kind.GAP_ACCEPTED:
            lines.append(
                f"{_hm(event.ts)} {who} accepted the gap {event.get('gap_start')} – "
                f"{event.get('gap_end')}: {inert(event.get('note'))}"
            )
        elif kind is Kind.RECONCILE:
            lines.append(
                f"{_hm(event.ts)} {who} reconciled: the flag read {event.get('flag_percent')} % "
                f"(journal now {event.get('to_stage')})"
            )
        elif kind is Kind.COMPLETE:
            lines.append(f"{_hm(event.ts)} {who} completed the cutover")
    return Section("actions" if mine else "actions by others", _capped(lines))


def flips(runs: Sequence[Run], since: datetime) -> Section:
    """Verdict changes since `since`: a run that began then with another verdict than the
    run of the same gate or trigger before it."""
    by_name: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_name.setdefault((run.what, run.name), []).append(run)
    lines: list[tuple[datetime, str]] = []
    for (what, name), mine in by_name.items():
        mine.sort(key=lambda r: r.first)
        first = mine[0]
        # A gate or trigger first seen in the window: news when it is not fine.
        if first.first > since and first.verdict not in ("pass", "quiet"):
            label = "gate" if what == GATE else "trigger"
            verdict = "FIRED" if first.verdict == "fired" else first.verdict.upper()
            lines.append(
                (first.first, f"{_hm(first.first)} {label} {name} {verdict}: {first.reason}")
            )
        for before, run in itertools.pairwise(mine):
            if run.first <= since or run.verdict == before.verdict:
                continue
            if what == GATE:
                text = f"gate {name} {before.verdict.upper()} → {run.verdict.upper()}: {run.reason}"
            elif run.verdict == "fired":
                text = f"trigger {name} FIRED: {run.reason}"
            elif run.verdict == "quiet" and before.verdict == "fired":
                text = f"trigger {name} cleared: {run.reason}"
            else:
                text = f"trigger {name} {before.verdict} → {run.verdict}: {run.reason}"
            lines.append((run.first, f"{_hm(run.first)} {text}"))
    lines.sort()
    return Section("verdicts that changed", _capped([text for _, text in lines]))


def gaps(runs: Sequence[Run], stage: Stage, since: datetime, now: datetime) -> Section:
    """Stretches with no evaluation of the stage's gates longer than its max_gap."""
    spans = sorted(
        (r.first, r.last)
        for r in runs
        if r.what == GATE and r.stage == stage.id and r.last >= since
    )
    limit = timedelta(seconds=stage.max_gap_s)
    lines = []
    cursor: datetime | None = None
    for first, last in spans:
        if cursor is not None and first - cursor > limit and first > since:
            lines.append(
                f"{_hm(cursor)} – {_hm(first)}: a {humanize((first - cursor).total_seconds())} "
                "gap, nothing evaluated the gates"
            )
        cursor = last if cursor is None else max(cursor, last)
    if cursor is not None and now - cursor > limit:
        lines.append(
            f"since {_hm(cursor)}: nothing has evaluated the gates for "
            f"{humanize((now - cursor).total_seconds())}"
        )
    return Section("gaps in the evidence", _capped(lines))


def hold_line(stage: Stage, hold: Hold, now: datetime) -> str:
    if stage.hold_s <= 0:
        return f"{stage.id}: no hold"
    if hold.met:
        return f"{stage.id}: hold met ({humanize(stage.hold_s)})"
    eta = ""
    if hold.since is not None and not hold.held_by:
        eta = f"; ETA {_hm(now + timedelta(seconds=hold.left_s))} if every gate keeps passing"
    return f"{stage.id}: {hold.describe()}{eta}"


def needs_more(runbook: Runbook, stage: Stage, runs: Sequence[Run], now: datetime) -> Section:
    """For each gate waiting on too little data (its interval straddles the threshold): how
    much more it needs at the rate seen so far, and how long that takes at the last hour's
    rate of new trials, where the evidence shows one."""
    lines = []
    for gate in stage.gates:
        check = gate.check
        if check.successes is None or check.trials is None:
            continue
        if check.against is not None or check.distribution or check.new_rows:
            continue  # a two-sample comparison: `value` bounds the difference, not a rate
        mine = sorted(
            (r for r in runs if r.what == GATE and r.name == gate.id and r.stage == stage.id),
            key=lambda r: r.last,
        )
        if not mine or mine[-1].verdict != "wait" or mine[-1].n is None:
            continue
        latest = mine[-1]
        n = latest.n or 0.0
        scale = 100.0 if check.value > 1 else 1.0
        if latest.value is None or n <= 0:
            continue
        p = latest.value / scale
        more = more_trials_needed(p * n, n, check.value, check.op, check.confidence or 0.95)
        noun = check.trials.removeprefix("total_")
        if more is None:
            lines.append(
                f"gate {gate.id}: at {latest.value:g} it sits on the threshold; more {noun} "
                "will not decide it unless the rate moves"
            )
            continue
        text = f"gate {gate.id}: ~{more:,} more {noun} at the current rate"
        hour = [r for r in mine if r.last >= now - timedelta(hours=1) and r.n is not None]
        if hour:
            start = min(hour, key=lambda r: r.first)
            elapsed = (latest.last - start.first).total_seconds()
            grown = (latest.n or 0) - (start.n_first or 0)
            if elapsed >= 600 and grown > 0:
                eta = more / (grown / elapsed)
                text += f", about {humanize(eta)} at the last hour's rate"
        lines.append(text)
    return Section("waiting for data", _capped(lines))


def digest(
    runbook: Runbook,
    *,
    events: Sequence[Event],
    runs: Sequence[Run],
    stage: Stage,
    hold: Hold,
    since: datetime,
    now: datetime,
    me: str,
    mine: bool = False,
) -> list[Section]:
    """Every section, in the order an operator reads them (empty ones left out). `mine`:
    one's own actions too (a window asked for, not "since I last looked")."""
    sections = [
        Section("hold", (hold_line(stage, hold, now),)),
        actions_since(events, since, me, mine=mine),
        flips(runs, since),
        gaps(runs, stage, since, now),
        needs_more(runbook, stage, runs, now),
    ]
    return [s for s in sections if s.lines]
