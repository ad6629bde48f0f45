"""Signing off a step of the current stage: the one rule set the console and the CLI share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cutover.base.errors import CutoverError
from cutover.judge.check import CheckReport
from cutover.judge.hold import judge_gate
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.record.events import Kind
from cutover.record.journal import Event, iso_utc
from cutover.record.state import CutoverState
from cutover.runbook.durations import humanize
from cutover.runbook.model import Gate, Step
from cutover.sources.probes import ProbeResult, run_probe


class SignOffRefused(CutoverError):
    """The step cannot be signed now; the message says why and what to do."""


@dataclass(frozen=True)
class Signed:
    event: Event
    probe: ProbeResult | None


def not_yet(session: Session, state: CutoverState, step: Step, now: datetime) -> str:
    """Why a step with `after` (and `needs`) cannot be signed yet; '' when it can. `after`
    alone is time in the stage; with `needs`, those gates must have been PASS, by the
    evidence, for that long ("zero v1 traffic for 7 more days")."""
    if step.after_s is None:
        return ""
    if state.entered_at is None:
        return f"the stage has not started; it needs {humanize(step.after_s)}"
    if not step.needs:
        in_stage = (now - state.entered_at).total_seconds()
        if in_stage >= step.after_s:
            return ""
        return f"{humanize(step.after_s - in_stage)} of the {humanize(step.after_s)} left"
    stage = session.runbook.stage(state.stage_id)
    runs = session.read_evidence(state.entered_at).runs
    accepted = [(g.start, g.end) for g in state.accepted_gaps]
    short = []
    for gate in step.needs:
        held = judge_gate(gate, stage.id, runs, state.entered_at, now, stage.max_gap_s, accepted)
        if held.held_s < step.after_s:
            why = f"; restarted after {held.restart_reason}" if held.restart_reason else ""
            short.append(
                f"gate {gate} PASS for {humanize(held.held_s)} of {humanize(step.after_s)}{why}"
            )
    return "; ".join(short)


def linked_gates(step: Step, gates: Sequence[Gate]) -> list[str]:
    """The gates a step vouches for: the one of its own id (the rollback checklist's
    `in_flight_drained`) and those it `needs`."""
    ids = {g.id for g in gates}
    return [g for g in dict.fromkeys((step.id, *step.needs)) if g in ids]


def contradicted(step: Step, gates: Sequence[Gate], report: CheckReport | None) -> list[str]:
    """Why the screen contradicts signing `step` now: each gate it vouches for that does
    not PASS in `report` (a gate nobody judged does not pass either)."""
    judged = {g.id: g for g in (*report.gates, *report.rollback_gates)} if report else {}
    out = []
    for gate_id in linked_gates(step, gates):
        gate = judged.get(gate_id)
        if gate is None:
            out.append(f"gate {gate_id} has not been judged")
        elif gate.verdict is not Verdict.PASS:
            out.append(f"gate {gate_id} is {gate.verdict.value.upper()}: {gate.judgement.reason}")
    return out


async def sign_off(
    session: Session,
    step_id: str,
    *,
    note: str = "",
    override: bool = False,
    probe_result: ProbeResult | None = None,
    report: CheckReport | None = None,
    now: datetime | None = None,
) -> Signed:
    """Journal a sign-off of `step_id` in the current visit of the current stage.

    A step that names a probe is checked first (or `probe_result`, when the caller just ran
    it): it must pass, or the operator overrides with a note saying why. So must the gates
    the step vouches for (`linked_gates`), as `report` judged them: a step is never signed
    plainly while the screen says its gate fails."""
    state, _ = session.state()
    if state.chain is not None:
        # A sign-off vouches for what the journal says happened; that is unknown now.
        raise SignOffRefused(f"cannot sign off: {state.chain.message}")
    stage = session.runbook.stage(state.stage_id)
    steps = {s.id: s for s in stage.steps}
    checklist = session.runbook.rollback
    rollback_steps = {s.id: s for s in checklist.steps} if checklist else {}
    in_checklist = step_id in rollback_steps and step_id not in steps
    if in_checklist and state.after_rollback is None:
        raise SignOffRefused(
            f"{step_id} is a step of the rollback checklist, which opens after a rollback; "
            "there has been none since the last advance"
        )
    if step_id not in steps and not in_checklist:
        known = ", ".join([*steps, *(rollback_steps if state.after_rollback else ())]) or "none"
        raise SignOffRefused(f"no step {step_id!r} in stage {stage.id}; its steps: {known}")
    signoffs = state.after_rollback.signoffs if in_checklist else state.signoffs
    if step_id in signoffs:
        signed = signoffs[step_id]
        where = "the rollback checklist" if in_checklist else f"this visit of {stage.id}"
        raise SignOffRefused(
            f"{step_id} is already signed in {where} by {signed.actor} at {iso_utc(signed.at)}"
        )
    if override and not note.strip():
        raise SignOffRefused("an override needs a note saying why the probe's result is accepted")
    step = rollback_steps[step_id] if in_checklist else steps[step_id]
    if step.note_required and not note.strip():
        raise SignOffRefused(
            f"{step_id} needs a note ({step.text}): say it with --note; it goes in the journal"
        )
    # A checklist step's `after` counts from the rollback, not from entering the stage.
    since = replace(state, entered_at=state.after_rollback.at) if in_checklist else state
    too_early = not_yet(session, since, step, now or datetime.now(UTC))
    if too_early:
        raise SignOffRefused(f"{step_id} cannot be signed yet: {too_early}")
    gates = (checklist.gates if in_checklist and checklist else ()) or stage.gates
    against = contradicted(step, gates, report)
    if against and not override:
        raise SignOffRefused(
            f"{step_id} vouches for what its gate says, and {'; '.join(against)}: sign it "
            "as an override with a note saying why it is true anyway"
        )
    if against and not note.strip():
        raise SignOffRefused("an override needs a note saying why the step is true anyway")
    result = None
    if step.probe is not None:
        result = probe_result or await run_probe(
            session.runbook.probes[step.probe], environ=session.environ
        )
        if not result.passed and not override:
            raise SignOffRefused(
                f"{step_id} needs probe {step.probe} to pass: {result.summary}; fix it, or "
                "override with a note saying why it is acceptable"
            )
    fields: dict = {"checklist": "rollback"} if in_checklist else {}
    if against:
        fields["contradicted"] = against
    probe_failed = result is not None and not result.passed
    event = session.journal.append(
        Kind.SIGNOFF,
        stage=stage.id,
        step=step.id,
        visit=state.visit,
        note=note,
        override=bool(override and (probe_failed or against)),
        probe=result.summary if result else None,
        **fields,
    )
    return Signed(event, result)
