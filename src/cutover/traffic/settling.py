"""Settling a move an interruption left without outcome, by what the flag reads once final;
and `cutover reconcile`, which records what the flag reads after a drift."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cutover.judge.session import Session
from cutover.record.events import Kind, move_kind, move_words
from cutover.record.journal import ActionBusy
from cutover.traffic import children, deployments
from cutover.traffic.change import Progress, quiet, why_unverified
from cutover.traffic.flags import Flag, FlagError, FlagState
from cutover.traffic.machine import flag_disagrees


async def settle_pending(
    session: Session,
    flag: Flag,
    *,
    wait_s: float = 0.0,
    poll_s: float = 2.0,
    progress: Progress = quiet,
) -> list[str]:
    """Close an intent with no outcome (a crash or an interruption mid-move) by what the flag
    reads once it is final. A deployment still QUEUED or BUILDING may yet make the change
    live, so it is waited for (up to `wait_s`) and, if still not final, recorded as
    unsettled: the journal says "done" or "failed" only when that is what happened.

    Callers hold the action lock or check that nobody does; a live action elsewhere is not
    a crash. Returns what it told the operator."""
    state, _ = session.state()
    pending = state.pending
    if pending is None:
        return []
    who = f"{move_words(pending.move)} to {pending.to_percent} % by {pending.actor}"
    started = time.monotonic()
    # A flag command the move started may still be running (its cutover died, the command
    # did not): what the flag reads now says nothing final until it has exited.
    child = children.record_path(session.runbook.journal_path)
    while (running := children.running(child)) is not None:
        if time.monotonic() - started >= wait_s:
            line = (
                f"{who} has no outcome yet: its flag command (process group {running[0]}: "
                f"{running[1]}) is still running; it settles once that exits"
            )
            progress(line)
            return [line]
        await asyncio.sleep(poll_s)
    while True:
        try:
            read = await flag.read()
        except FlagError as exc:
            line = (
                f"{who} at {pending.at:%Y-%m-%d %H:%M:%S}Z has no outcome, and the flag "
                f"cannot be read to settle it: {exc}"
            )
            progress(line)
            return [line]
        if read.settled or time.monotonic() - started >= wait_s:
            break
        progress(f"{who}: waiting for deployment {read.pending_deployment} ({read.pending_state})")
        await asyncio.sleep(poll_s)
    if not read.settled:
        last = state.unsettled.get(pending.action) if hasattr(state, "unsettled") else None
        now_pending = f"{read.pending_deployment} {read.pending_state}"
        if last != now_pending:
            session.journal.append(
                Kind.MOVE_UNSETTLED,
                action=pending.action,
                move=pending.move,
                pending=now_pending,
                flag_read=read.summary(),
            )
        line = (
            f"{who} has no outcome yet: pending: deployment {read.pending_deployment} "
            f"{read.pending_state}; it settles once the deployment is final"
        )
        progress(line)
        return [line]
    deployments.record(session, read, lambda kind, fields: session.journal.append(kind, **fields))
    read, finished = await _finish_instant(flag, pending.move, pending.to_percent, read, progress)
    if finished is None:
        line = (
            f"{who} took traffic to {pending.to_percent} % (production serves "
            f"{read.deployment_id}) but the variable could not be set; it settles at the "
            "next command, or roll back again"
        )
        progress(line)
        return [line]
    problem = why_unverified(read, pending.to_percent)
    if problem is None:
        platform = {"pinned": read.pinned} if read.pinned or state.pinned is not None else {}
        session.journal.append(
            move_kind(pending.move, "done"),
            action=pending.action,
            flag_percent=read.percent,
            reconciled=True,
            flag_read=read.summary(),
            verified=f"reconciled after an interruption: flag reads {read.percent} % and it "
            f"is live{finished}",
            **platform,
        )
        line = (
            f"reconciled: {who} was interrupted but took effect (flag reads {read.percent} %)"
            f"{finished}"
        )
    else:
        session.journal.append(
            move_kind(pending.move, "failed"),
            action=pending.action,
            flag_percent=read.percent,
            reconciled=True,
            flag_read=read.summary(),
            error=f"interrupted; {problem}",
        )
        line = f"reconciled: {who} was interrupted and did not take effect ({problem})"
    progress(line)
    return [line]


async def _finish_instant(
    flag: Flag, move: str, percent: int, read: FlagState, progress: Progress
) -> tuple[FlagState, str | None]:
    """An instant rollback interrupted between re-pointing production and setting the
    variable: traffic already gets `percent` (production serves a deployment known to carry
    it), the variable does not say so yet. Setting it is what that rollback was about to
    do, so future builds carry it too; then it is read again. None: it could not be set
    (nothing is settled yet)."""
    store = getattr(flag, "store", None)
    if move != "rollback" or store is None or read.live_percent != percent:
        return read, ""
    if read.percent == percent:
        return read, ""
    progress(
        f"production serves {read.deployment_id}, which carries {percent} %, but the "
        f"variable reads {read.percent} %: setting it, as the interrupted rollback was about to"
    )
    try:
        await store(percent, progress)
        return await flag.read(), f"; the variable set to {percent} % after the interruption"
    except FlagError as exc:
        progress(f"! the variable could not be set: {exc}")
        return read, None


# The name the callers know; settling is what reconciling an interrupted move means.
reconcile = settle_pending


async def reconcile_if_idle(session: Session, flag: Flag, wait_s: float = 0.0) -> list[str]:
    """Settle an interrupted move only when no other process is mid-action (it holds the
    lock while it acts)."""
    state, _ = session.state()
    if state.pending is None:
        return []
    try:
        with session.journal.action_lock("reconcile"):
            return await settle_pending(session, flag, wait_s=wait_s)
    except ActionBusy as exc:
        return [f"an action is in flight: {exc.holder}"]


@dataclass(frozen=True)
class Reconciled:
    consistent: bool  # the journal and the flag now agree
    message: str


async def record_reading(
    session: Session, flag: Flag, *, note: str = "", progress: Progress = quiet
) -> Reconciled:
    """`cutover reconcile`: after a drift, record what the flag reads. The journal's stage
    moves back to the latest stage (at or before the current one) that runs at that
    percent; never forward, which would skip that stage's guards."""
    with session.journal.action_lock("reconcile"):
        await settle_pending(session, flag, wait_s=600.0, progress=progress)
        state, _ = session.state()
        if state.pending is not None:
            return Reconciled(False, "an interrupted move is still not settled; try again")
        read = await flag.read()
        deployments.record(
            session, read, lambda kind, fields: session.journal.append(kind, **fields)
        )
        book = session.runbook
        stage = book.stage(state.stage_id)
        if not read.settled:
            return Reconciled(
                False,
                f"deployment {read.pending_deployment} is {read.pending_state}: nothing is "
                "settled until it ends; try again then",
            )
        if flag_disagrees(read, stage) is None:
            return Reconciled(
                True, f"nothing to reconcile: the flag reads {read.percent} % as {stage.id} wants"
            )
        if read.percent is None or not read.in_effect:
            return Reconciled(
                False,
                f"the flag's stored value is not what traffic gets ({read.detail}): {read.remedy}",
            )
        upto = book.stages[: book.stage_index(stage.id) + 1]
        matching = [s for s in upto if s.percent == read.percent]
        landing = matching[-1] if matching else stage
        session.journal.append(
            Kind.RECONCILE,
            from_stage=stage.id,
            to_stage=landing.id,
            flag_percent=read.percent,
            journal_percent=state.percent,
            flag_read=read.summary(),
            note=note,
        )
        if matching:
            return Reconciled(
                True,
                f"recorded: the flag reads {read.percent} %; the journal now says "
                f"{landing.id} ({landing.percent} %)",
            )
        return Reconciled(
            False,
            f"recorded: the flag reads {read.percent} %, but no stage at or before {stage.id} "
            f"runs at {read.percent} %: roll back, or step back, to bring traffic to a "
            "stage's percent",
        )
