"""What the watcher says: each change once, in the operator's words. A change is judged
against what was last *said*, not against the last evaluation, so what an outage did to
the verdicts is not said gate by gate, and a flip that happened while nothing was said
(the database away) is still said once after. Pure: state in, lines and state out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from cutover.base.inert import inert
from cutover.judge.alarms import Alarm
from cutover.judge.check import CheckReport, TriggerReport
from cutover.judge.hold import Hold
from cutover.judge.verdicts import Verdict
from cutover.record.events import Kind, known, move_words
from cutover.record.journal import Event
from cutover.record.state import CutoverState
from cutover.runbook.durations import humanize
from cutover.runbook.model import Stage
from cutover.traffic.flags import FlagState

THEN = {"critical": "roll back now", "high": "respond", "medium": "the hold waits"}


@dataclass(frozen=True)
class Said:
    """What was last said of this stage visit's gates and hold, and of every trigger."""

    summarised: bool = False  # the visit's one-line summary is out
    gates: Mapping[str, Verdict] = field(default_factory=dict)
    triggers: Mapping[str, str] = field(default_factory=dict)  # id -> trigger_state
    hold: Hold | None = None
    overdue: frozenset[str] = frozenset()  # high triggers whose time to respond ran out

    def new_visit(self) -> Said:
        """A new stage visit: its own gates and hold; triggers are the runbook's, kept."""
        return replace(self, summarised=False, gates={}, hold=None)


def trigger_state(t: TriggerReport) -> str:
    """fired, pending (its condition holds, not yet for `for`), suspect (past the threshold,
    not yet by its interval), escalated (fired, and held long enough to be more urgent),
    quiet, unknown, or off (not live in this stage)."""
    if t.fired is True and t.escalated_from:
        return "escalated"
    return t.state


def news(
    said: Said,
    *,
    stage: Stage,
    current: CutoverState,
    report: CheckReport,
    hold: Hold,
    alarms: Mapping[str, Alarm],
) -> tuple[Said, list[str]]:
    """What changed since it was last said: gate flips, triggers fired, cleared, pending or
    unknown, a high trigger's time to respond running out, the hold met or restarted. The
    first judgement of a visit is said as one summary line instead."""
    lines: list[str] = []
    now = report.evaluated_at
    if not said.summarised:
        lines.append(summary(stage, current, report, hold))
        triggers = {t.id: trigger_state(t) for t in report.triggers}
        said = replace(said, summarised=True, hold=hold, triggers={**triggers, **said.triggers})
    gates = dict(said.gates)
    for gate in report.gates:
        before = gates.get(gate.id)
        if before is not None and before is not gate.verdict:
            lines.append(
                f"gate {gate.id}: {before.value.upper()} → {gate.verdict.value.upper()} "
                f"({gate.judgement.reason})"
            )
        gates[gate.id] = gate.verdict
    triggers = dict(said.triggers)
    overdue = set(said.overdue)
    for trigger in report.triggers:
        line = _overdue(trigger, now, overdue)
        if line:
            lines.append(line)
        if trigger.check is None:
            continue  # raised and cleared in the journal, and said from there
        state, before = trigger_state(trigger), triggers.get(trigger.id)
        # A trigger going live or off with the stage is said by the stage change itself.
        if before is not None and before != state and "off" not in (before, state):
            lines.append(trigger_line(trigger, state, before, now, alarms.get(trigger.id)))
        triggers[trigger.id] = state
    if said.hold is not None and hold.required_s > 0:
        if hold.met and not said.hold.met:
            lines.append(f"{stage.id}: {hold.describe()}")
        elif hold.held_s < said.hold.held_s - 1.0 and hold.restart_reason:
            # Said when it drops, not at each FAIL that keeps it at zero.
            lines.append(f"{stage.id}: hold restarted: {hold.describe()}")
    return Said(True, gates, triggers, hold, frozenset(overdue)), lines


def _overdue(t: TriggerReport, now: datetime, overdue: set[str]) -> str | None:
    """A high trigger's time to respond running out, once per firing (a raised manual one
    too: "user complaints: roll back within the hour")."""
    deadline = t.deadline(now)
    if deadline is None or t.fired is not True:
        overdue.discard(t.id)
        return None
    if now < deadline or t.id in overdue:
        return None
    overdue.add(t.id)
    return (
        f"! trigger {t.id} ({t.severity}): the time to respond ran out at {deadline:%H:%M}Z "
        "and it is not cleared: roll back, or clear it with a note"
    )


def trigger_line(
    t: TriggerReport, state: str, before: str, now: datetime, alarm: Alarm | None
) -> str:
    reason = t.judgement.reason
    if state == "fired":
        then = THEN.get(t.severity, "")
        deadline = t.deadline(now)
        if deadline is not None:
            left = (deadline - now).total_seconds()
            when = f"{humanize(left)} left" if left > 0 else f"OVERDUE by {humanize(-left)}"
            then += f" by {deadline:%H:%M:%S}Z ({when}) unless cleared with a note"
        return f"! trigger {t.id} FIRED ({t.severity}: {then}): {reason}"
    if state == "escalated":
        return (
            f"! trigger {t.id} ESCALATED {t.escalated_from} → {t.severity} after "
            f"{humanize(t.held_s or 0)} ({THEN.get(t.severity, '')}): {reason}"
        )
    if state == "pending":
        return (
            f"trigger {t.id} pending: its condition holds; it fires after "
            f"{humanize(t.for_s)} of it ({reason})"
        )
    if state == "suspect":
        return (
            f"◑ trigger {t.id} SUSPECT ({t.severity}): past its threshold, not yet by its "
            f"interval; {t.decided_by()}. Advance is held; nothing rolls back ({reason})"
        )
    if state == "unknown":
        return f"? trigger {t.id} {alarm.describe() if alarm else 'UNKNOWN: ' + reason}"
    if before == "fired":
        return f"trigger {t.id} cleared: {reason}"
    return f"trigger {t.id} quiet (was {before}): {reason}"


def summary(stage: Stage, current: CutoverState, report: CheckReport, hold: Hold) -> str:
    """A stage visit in one line: every gate's verdict, the triggers by state, the hold."""
    gates = ", ".join(f"{g.id} {g.verdict.value.upper()}" for g in report.gates) or "none"
    by_state: dict[str, list[str]] = {}
    for t in report.triggers:
        by_state.setdefault(trigger_state(t), []).append(t.id)
    triggers = "; ".join(
        f"{state} {', '.join(ids)}" if state != "quiet" else f"{len(ids)} quiet"
        for state, ids in sorted(by_state.items())
    )
    return (
        f"{stage.id} ({stage.percent} %, visit {current.visit}): gates {gates}; triggers "
        f"{triggers or 'none'}; {hold.describe()}"
    )


def flag_words(state: FlagState) -> str:
    live = "live" if state.in_effect else f"not live: {state.detail or 'not redeployed'}"
    pending = (
        f"; deployment {state.pending_deployment} {state.pending_state}"
        if state.pending_deployment
        else ""
    )
    return f"{state.percent} % ({live}){pending}"


def describe_event(e: Event) -> str:
    """One journal event as one line in the operator's words."""
    kind, who = known(e.kind), e.actor
    note = f": {inert(e.get('note'))}" if e.get("note") else ""  # one event, one line
    if kind is Kind.SIGNOFF:
        override = " (override)" if e.get("override") else ""
        return f"{who} signed off {e.get('stage')} · {e.get('step')}{override}{note}"
    if kind is Kind.TRIGGER_RAISED:
        return f"! {who} raised trigger {e.get('trigger')} ({e.get('severity')}){note}"
    if kind is Kind.TRIGGER_CLEARED and e.get("acknowledged"):
        return (
            f"{who} answered trigger {e.get('trigger')}'s deadline{note}; it still fires and "
            "still holds advance"
        )
    if kind is Kind.TRIGGER_CLEARED:
        return f"{who} cleared trigger {e.get('trigger')}{note}"
    if kind is Kind.GAP_ACCEPTED:
        return f"{who} accepted the gap {e.get('gap_start')} – {e.get('gap_end')}{note}"
    if kind is Kind.COMPLETE:
        return f"✓ {who} completed the cutover (stage {e.get('stage')})"
    if kind is Kind.RECONCILE:
        return (
            f"{who} reconciled: the flag reads {e.get('flag_percent')} %, the journal now "
            f"says {e.get('to_stage')}{note}"
        )
    if kind is Kind.MOVE_UNSETTLED:
        return f"{e.get('move')} still unsettled: deployment {e.get('pending')}"
    if kind is Kind.TORN:
        return "the journal had a torn last line (a crash mid-write); acknowledged"
    if kind is not None and kind.move:
        if kind.phase == "intent":
            reason = f": {e.get('reason')}" if e.get("reason") else ""
            return (
                f"{who}: {move_words(kind.move)} {e.get('from_stage')} → {e.get('to_stage')} "
                f"({e.get('journal_percent')} % → {e.get('to_percent')} %){reason}"
            )
        if kind.phase == "done":
            return f"{who}: {move_words(kind.move)} done: {e.get('verified')}"
        return f"✗ {who}: {move_words(kind.move)} failed: {e.get('error')}"
    return f"{who}: {e.kind}"
