"""What the operator may do now, and why not: a pure function of runbook, state, time, verdicts.

Asymmetric friction (DESIGN principle 4): going toward risk is guarded; going toward safety
is never refused for a gate, a stale query, a missing sign-off or an action in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cutover.check import CheckReport
from cutover.durations import humanize
from cutover.flags.base import FlagState
from cutover.gates import Verdict
from cutover.model import Runbook, Stage
from cutover.state import CutoverState


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
    flag_percent: int | None = None,
) -> Actions:
    """Every action's permission. `flag_percent` is what the flag reads (None: unknown)."""
    stage = runbook.stage(state.stage_id)
    upcoming = next_stage(runbook, state)
    before = previous_stage(runbook, state)
    landing = rollback_stage(runbook, state)
    return Actions(
        advance=_advance(stage, upcoming, state, now, report),
        rollback=_rollback(state, flag_percent, landing),
        stepback=_stepback(before, state),
        next_stage=upcoming,
        previous_stage=before,
        rollback_stage=landing,
    )


def _advance(
    stage: Stage,
    upcoming: Stage | None,
    state: CutoverState,
    now: datetime,
    report: CheckReport | None,
) -> Permission:
    if upcoming is None:
        return Permission(False, f"{stage.title} is the last stage")
    if state.pending is not None:
        return Permission(
            False,
            f"{state.pending.move} by {state.pending.actor} is still in "
            "flight (or was interrupted): wait for it or roll back",
        )
    missing: list[str] = []
    unsigned = unsigned_steps(stage, state)
    if unsigned:
        missing.append(f"{_plural(len(unsigned), 'sign-off')}")
    hold_left = stage.hold_s - state.hold_elapsed_s(now)
    if hold_left > 0:
        missing.append(f"{humanize(hold_left)} of hold")
    blocked: list[str] = []
    if stage.gates:
        if report is None or report.stage_id != stage.id:
            blocked.append("gates not checked yet")
        else:
            for gate in report.gates:
                if gate.verdict is not Verdict.PASS:
                    blocked.append(
                        f"gate {gate.id} is {gate.verdict.value.upper()}: {gate.judgement.reason}"
                    )
    if missing or blocked:
        parts = [f"{' and '.join(missing)} left"] if missing else []
        return Permission(False, "; ".join(parts + blocked))
    return Permission(True, f"{stage.percent} % → {upcoming.percent} % ({upcoming.title})")


def _rollback(state: CutoverState, flag_percent: int | None, landing: Stage) -> Permission:
    # Rollback acts on what the flag reads, not on what the journal believes; when the flag
    # can't be read, traffic may be flowing, so it stays allowed.
    if state.percent == 0 and flag_percent == 0 and state.pending is None:
        return Permission(False, "traffic is already at 0 % (the flag reads 0)")
    return Permission(True, f"take traffic to 0 % now ({landing.title})")


def _stepback(before: Stage | None, state: CutoverState) -> Permission:
    if before is None:
        return Permission(False, "this is the first stage")
    return Permission(True, f"{state.percent} % → {before.percent} % ({before.title})")


def drift(read: FlagState | None, stage: Stage) -> str | None:
    """Why what traffic gets may differ from the stage's percent, or None when it cannot.

    A stored value that is not live counts too: traffic then runs at whatever the live
    deployment was built with (an edit without a redeploy, an interrupted action)."""
    if read is None:
        return None  # unreadable: the flag problem says so
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
