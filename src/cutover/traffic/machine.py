"""What the operator may do now, and why not: a pure function of runbook, state, time, verdicts.

Asymmetric friction (DESIGN principle 4): going toward risk is guarded; going toward safety
is never refused for a gate, a stale query, a missing sign-off or an action in flight.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from cutover.judge.check import CheckReport
from cutover.judge.hold import Hold
from cutover.judge.verdicts import Verdict
from cutover.record.state import CutoverState
from cutover.runbook.durations import humanize
from cutover.runbook.model import Rollback, Runbook, Stage
from cutover.traffic.flags.base import FlagState


@dataclass(frozen=True)
class Permission:
    allowed: bool
    reason: str  # why not, when refused; what it will do, when allowed


@dataclass(frozen=True)
class Actions:
    advance: Permission
    rollback: Permission
    stepback: Permission
    next_stage: Stage | None
    previous_stage: Stage | None
    rollback_stage: Stage


def next_stage(runbook: Runbook, state: CutoverState) -> Stage | None:
    index = runbook.stage_index(state.stage_id)
    return runbook.stages[index + 1] if index + 1 < len(runbook.stages) else None


def previous_stage(runbook: Runbook, state: CutoverState) -> Stage | None:
    index = runbook.stage_index(state.stage_id)
    return runbook.stages[index - 1] if index > 0 else None


def rollback_stage(runbook: Runbook, state: CutoverState) -> Stage:
    """Where an emergency rollback lands: the last 0 % stage not past the current one (so a
    rollback never skips the guards of a 0 % stage ahead; a runbook may hold two), else the
    first stage."""
    upto = runbook.stages[: runbook.stage_index(state.stage_id) + 1]
    at_zero = [s for s in upto if s.percent == 0]
    return at_zero[-1] if at_zero else runbook.stages[0]


def unsigned_steps(stage: Stage, state: CutoverState) -> list[str]:
    return [step.id for step in stage.steps if step.id not in state.signoffs]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def decide(
    runbook: Runbook,
    state: CutoverState,
    now: datetime,
    report: CheckReport | None,
    flag: FlagState | None = None,
    hold: Hold | None = None,
    overrides: Collection[str] = (),
) -> Actions:
    """Every action's permission. `flag` is what the flag read last (None: not read, or
    unreadable): going toward risk needs it to agree with the journal. `overrides`: gates
    the operator advances past while they WAIT (with a journaled note); never a FAIL."""
    stage = runbook.stage(state.stage_id)
    upcoming = next_stage(runbook, state)
    before = previous_stage(runbook, state)
    landing = rollback_stage(runbook, state)
    advance = _advance(
        stage, upcoming, state, now, report, flag, bool(runbook.triggers), hold, overrides
    )
    if state.after_rollback is not None and runbook.rollback is not None:
        advance = _after_rollback(runbook.rollback, state, report, overrides, advance)
    return Actions(
        advance=advance,
        rollback=_rollback(state, flag, landing),
        stepback=_stepback(stage, before, state, flag),
        next_stage=upcoming,
        previous_stage=before,
        rollback_stage=landing,
    )


def flag_disagrees(read: FlagState | None, stage: Stage) -> str | None:
    """Why the flag does not show what the journal says, or None when it does. Advance and
    step back refuse on any of these: moving traffic from a false belief skips stages."""
    if read is None:
        return (
            f"the flag has not been read (or cannot be): a move needs to see it at "
            f"{stage.percent} % first"
        )
    if not read.settled:
        return (
            f"deployment {read.pending_deployment} is {read.pending_state}: wait until it "
            "is final, or roll back"
        )
    if read.percent is not None and read.percent != stage.percent:
        return (
            f"the flag reads {read.percent} % but the journal says {stage.id} "
            f"({stage.percent} %): roll back, or `cutover reconcile` to record what the "
            "flag reads"
        )
    return drift(read, stage)


def _blocking_triggers(report: CheckReport | None) -> list[str]:
    """Triggers that stop an advance: fired (any severity), unknown (fail closed), or
    critical or medium and pending on `for` (it may become a rollback)."""
    if report is None:
        return []
    out = []
    for trigger in report.triggers:
        if trigger.fired is True:
            out.append(f"trigger {trigger.id} FIRED: {trigger.judgement.reason}")
        elif trigger.fired is None:
            out.append(f"trigger {trigger.id} is UNKNOWN: {trigger.judgement.reason}")
        elif trigger.holds_advance:
            out.append(
                f"trigger {trigger.id} ({trigger.severity}) is {trigger.pending_words()}: "
                f"{trigger.judgement.reason}"
            )
    return out


def _advance(
    stage: Stage,
    upcoming: Stage | None,
    state: CutoverState,
    now: datetime,
    report: CheckReport | None,
    flag: FlagState | None,
    has_triggers: bool,
    hold: Hold | None,
    overrides: Collection[str] = (),
) -> Permission:
    if state.completed is not None:
        return Permission(
            False,
            f"the cutover is complete ({state.completed.actor}, "
            f"{state.completed.at:%Y-%m-%d %H:%MZ})",
        )
    if state.chain is not None:
        return Permission(False, state.chain.message)
    if state.pending is not None:
        return Permission(
            False,
            f"{state.pending.move} by {state.pending.actor} is still in "
            "flight (or was interrupted): wait for it or roll back",
        )
    disagreement = flag_disagrees(flag, stage)
    if disagreement:
        return Permission(False, disagreement)
    missing: list[str] = []
    unsigned = unsigned_steps(stage, state)
    if unsigned:
        missing.append(f"{_plural(len(unsigned), 'sign-off')}")
    blocked: list[str] = []
    if stage.hold_s > 0 or (hold is not None and hold.held_by):
        # Judged over the evidence (hold.py): time alone is not a hold.
        if hold is None:
            missing.append(f"{humanize(stage.hold_s)} of hold (not judged yet: no evidence)")
        elif not hold.met:
            if hold.left_s > 0:
                missing.append(f"{humanize(hold.left_s)} of hold")
            if hold.held_by:
                blocked.append("hold held back by " + ", ".join(hold.held_by))
            if hold.restart_reason and hold.left_s > 0:
                blocked.append(f"the hold restarted after {hold.restart_reason}")
    if stage.gates:
        if report is None or report.stage_id != stage.id:
            blocked.append("gates not checked yet")
        else:
            for gate in report.gates:
                if not gate.counts:
                    continue  # optional, and its query lacks a column it needs: it says so
                if gate.verdict is Verdict.WAIT and gate.id in overrides:
                    continue  # advanced past with a note: the journal says who and why
                if gate.verdict is not Verdict.PASS:
                    never = (
                        " (an override passes a WAIT gate, never a FAIL)"
                        if gate.id in overrides
                        else ""
                    )
                    blocked.append(
                        f"gate {gate.id} is {gate.verdict.value.upper()}: "
                        f"{gate.judgement.reason}{never}"
                    )
    if report is None and has_triggers and not stage.gates:
        blocked.append("triggers not checked yet")
    blocked.extend(_blocking_triggers(report))
    if missing or blocked:
        parts = [f"{' and '.join(missing)} left"] if missing else []
        return Permission(False, "; ".join(parts + blocked))
    if upcoming is None:
        return Permission(True, f"complete the cutover at {stage.percent} % (no flag is touched)")
    return Permission(True, f"{stage.percent} % → {upcoming.percent} % ({upcoming.title})")


def _after_rollback(
    checklist: Rollback,
    state: CutoverState,
    report: CheckReport | None,
    overrides: Collection[str],
    advance: Permission,
) -> Permission:
    """After a rollback the next advance also needs the runbook's `[rollback]` checklist
    done: every step signed, every gate passing (an override passes a WAIT, as at a stage)."""
    assert state.after_rollback is not None
    left: list[str] = []
    unsigned = [s.id for s in checklist.steps if s.id not in state.after_rollback.signoffs]
    if unsigned:
        left.append(f"{_plural(len(unsigned), 'rollback sign-off')} left ({', '.join(unsigned)})")
    if checklist.gates and (report is None or not report.rollback_gates):
        left.append("the rollback checklist's gates not checked yet")
    for gate in report.rollback_gates if report is not None else ():
        if gate.verdict is Verdict.WAIT and gate.id in overrides:
            continue
        if gate.verdict is not Verdict.PASS:
            left.append(
                f"rollback gate {gate.id} is {gate.verdict.value.upper()}: {gate.judgement.reason}"
            )
    if not left:
        return advance
    reasons = [
        f"after the rollback of {state.after_rollback.at:%Y-%m-%d %H:%MZ}: " + "; ".join(left)
    ]
    if not advance.allowed:
        reasons.append(advance.reason)
    return Permission(False, "; ".join(reasons))


def _rollback(state: CutoverState, flag: FlagState | None, landing: Stage) -> Permission:
    # Never refused: it acts on what the flag reads, not on what the journal believes, and
    # at 0 % it reads the flag, says so and journals it without touching production.
    if flag is not None and flag.percent == 0 and flag.in_effect and flag.settled:
        return Permission(True, f"the flag already reads 0 % and it is live ({landing.title})")
    return Permission(True, f"take traffic to 0 % now ({landing.title})")


def _stepback(
    stage: Stage, before: Stage | None, state: CutoverState, flag: FlagState | None
) -> Permission:
    if before is None:
        return Permission(False, "this is the first stage")
    if state.chain is not None:
        return Permission(False, f"{state.chain.message}")
    disagreement = flag_disagrees(flag, stage)
    if disagreement:
        return Permission(False, f"{disagreement} (rollback is always available)")
    return Permission(True, f"{stage.percent} % → {before.percent} % ({before.title})")


def drift(read: FlagState | None, stage: Stage, *, record_read: bool = True) -> str | None:
    """Why what traffic gets may differ from the stage's percent, or None when it cannot.

    A stored value that is not live counts too: traffic then runs at whatever the live
    deployment was built with (an edit without a redeploy, an interrupted action). With a
    record never read (`record_read` False: the store cannot be reached or refuses), the
    stage is not known: a flag that differs from where a cutover starts is said as that,
    not as someone changing it outside cutover."""
    if read is None:
        return None  # unreadable: the flag problem says so
    if not record_read and read.percent != stage.percent:
        return (
            f"the flag reads {_percent_words(read.percent)}; the record cannot be read, so "
            "the stage traffic should be at is not known (a rollback still goes ahead)"
        )
    if read.percent is None:
        return (
            f"the flag holds no usable percent ({read.detail}); stage {stage.id} runs at "
            f"{stage.percent} %"
        )
    if read.percent != stage.percent:
        why = "someone changed it outside cutover, or an action failed"
        if not read.in_effect:
            why += "; it is not live either, so traffic runs at what the live deployment carries"
        return (
            f"the flag reads {read.percent} % but stage {stage.id} runs at {stage.percent} %: {why}"
        )
    if not read.in_effect:
        return (
            f"the flag reads {read.percent} % as stage {stage.id} wants, but that value is not "
            f"live ({read.detail}): traffic runs at what the live deployment carries until a "
            "redeploy is READY"
        )
    return None


def _percent_words(percent: int | None) -> str:
    return "no usable percent" if percent is None else f"{percent} %"
