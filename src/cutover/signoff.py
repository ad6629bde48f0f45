"""Signing off a step of the current stage: the one rule set the console and the CLI share."""

from __future__ import annotations

from dataclasses import dataclass

from cutover.errors import CutoverError
from cutover.events import Kind
from cutover.journal import Event, iso_utc
from cutover.probes import ProbeResult, run_probe
from cutover.session import Session


class SignOffRefused(CutoverError):
    """The step cannot be signed now; the message says why and what to do."""


@dataclass(frozen=True)
class Signed:
    event: Event
    probe: ProbeResult | None


async def sign_off(
    session: Session,
    step_id: str,
    *,
    note: str = "",
    override: bool = False,
    probe_result: ProbeResult | None = None,
) -> Signed:
    """Journal a sign-off of `step_id` in the current visit of the current stage.

    A step that names a probe is checked first (or `probe_result`, when the caller just ran
    it): it must pass, or the operator overrides with a note saying why."""
    state, _ = session.state()
    if state.chain is not None:
        # A sign-off vouches for what the journal says happened; that is unknown now.
        raise SignOffRefused(f"cannot sign off: {state.chain.message}")
    stage = session.runbook.stage(state.stage_id)
    steps = {s.id: s for s in stage.steps}
    if step_id not in steps:
        known = ", ".join(steps) or "none"
        raise SignOffRefused(f"no step {step_id!r} in stage {stage.id}; its steps: {known}")
    if step_id in state.signoffs:
        signed = state.signoffs[step_id]
        raise SignOffRefused(
            f"{step_id} is already signed in this visit of {stage.id} by {signed.actor} at "
            f"{iso_utc(signed.at)}"
        )
    if override and not note.strip():
        raise SignOffRefused("an override needs a note saying why the probe's result is accepted")
    step = steps[step_id]
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
    event = session.journal.append(
        Kind.SIGNOFF,
        stage=stage.id,
        step=step.id,
        visit=state.visit,
        note=note,
        override=bool(override and result is not None and not result.passed),
        probe=result.summary if result else None,
    )
    return Signed(event, result)
