"""Changing where traffic goes: advance, step back, rollback, and reconciling a crashed one.

Every change is journaled before it takes effect (intent, fsynced) and after (outcome, with
what was verified), and counts as done only when the flag reads back the new value and, where
the platform needs it, a new deployment carrying it is live (DESIGN principles 3, 4, 6).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cutover.check import CheckReport
from cutover.errors import CutoverError
from cutover.flags import Flag, FlagError, FlagState
from cutover.journal import ActionBusy
from cutover.machine import decide, rollback_stage
from cutover.model import Stage
from cutover.session import Session
from cutover.state import CutoverState

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


class Refused(CutoverError):
    """The guards said no; the message says why, in the operator's words."""


@dataclass(frozen=True)
class Outcome:
    move: str
    ok: bool
    from_percent: int
    to_percent: int
    to_stage: str
    took_s: float
    attempts: int
    message: str
    flag: FlagState | None = None
    done_at: datetime | None = None


def _verified(state: FlagState, percent: int) -> str | None:
    """Why the read-back does not show the change as done, or None when it does."""
    if state.percent != percent:
        return f"the flag reads {state.percent} %, not {percent} %"
    if not state.in_effect:
        return f"the flag reads {percent} % but it is not live yet ({state.detail})"
    return None


async def _change(
    session: Session,
    flag: Flag,
    *,
    move: str,
    state: CutoverState,
    target: Stage,
    percent: int,
    reason: str,
    progress: Progress,
    attempts: int | None,
    retry_delay_s: float,
) -> Outcome:
    """Journal the intent, set and verify (retrying when asked), journal the outcome."""
    action = uuid.uuid4().hex[:12]
    started = time.monotonic()
    session.journal.append(
        f"{move}.intent",
        action=action,
        from_stage=state.stage_id,
        to_stage=target.id,
        from_percent=state.percent,
        to_percent=percent,
        reason=reason,
    )
    progress(f"{move}: {state.percent} % → {percent} % ({target.title}), journaled")
    try:
        read_back, attempt, last_error = await _attempts(
            flag, percent, progress, attempts, retry_delay_s
        )
    except asyncio.CancelledError:
        # Interrupted mid-set or between retries: what the flag now reads is unknown here,
        # so say so; `status` (or the next action) reads it and shows any drift.
        session.journal.append(
            f"{move}.failed",
            action=action,
            error="interrupted by the operator before it was verified; the flag may have "
            "changed: see `cutover status`",
        )
        raise
    if read_back is None:
        took = time.monotonic() - started
        session.journal.append(
            f"{move}.failed", action=action, error=last_error, took_s=round(took, 1)
        )
        progress(f"✗ {move} failed after {attempt} attempt(s): {last_error}")
        return Outcome(
            move,
            False,
            state.percent,
            percent,
            target.id,
            took,
            attempt,
            f"{move} to {percent} % failed: {last_error}",
        )
    took = time.monotonic() - started
    verified = f"flag reads {read_back.percent} %" + (
        f"; {read_back.detail}" if read_back.detail else ""
    )
    done = session.journal.append(
        f"{move}.done",
        action=action,
        flag_percent=read_back.percent,
        verified=verified,
        took_s=round(took, 1),
        attempts=attempt,
    )
    progress(f"✓ {move} verified in {took:.1f}s: {verified}")
    return Outcome(
        move,
        True,
        state.percent,
        percent,
        target.id,
        took,
        attempt,
        f"{move} to {percent} % verified in {took:.1f}s",
        read_back,
        done.ts,
    )


async def _attempts(
    flag: Flag,
    percent: int,
    progress: Progress,
    attempts: int | None,
    retry_delay_s: float,
) -> tuple[FlagState | None, int, str]:
    """Set and verify until verified or `attempts` run out: (read-back or None, tries, last
    error). Backs off from `retry_delay_s` up to 30 s between tries."""
    attempt, delay, last_error = 0, retry_delay_s, ""
    while True:
        attempt += 1
        lasting = False  # a refusal (bad token, wrong project) that waiting will not cure
        try:
            read_back = await flag.set(percent, progress)
            problem = _verified(read_back, percent)
            if problem is None:
                return read_back, attempt, ""
            last_error = f"not verified: {problem}"
        except FlagError as exc:
            last_error, lasting = str(exc), not exc.retryable
        if attempts is not None and attempt >= attempts:
            return None, attempt, last_error
        # A rollback keeps trying whatever failed; a lasting failure needs a human meanwhile.
        todo = "; it will not pass by itself: fix it while this retries" if lasting else ""
        progress(f"attempt {attempt} failed: {last_error}{todo}; retrying in {delay:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def advance(
    session: Session,
    flag: Flag,
    *,
    report: CheckReport | None,
    confirm: int,
    to_stage: str | None = None,
    progress: Progress = _quiet,
    now: datetime | None = None,
) -> Outcome:
    """Go to the next stage: guarded by sign-offs, hold and gates, and the typed percent."""
    state, _ = session.state()
    actions = decide(session.runbook, state, now or datetime.now(UTC), report)
    target = actions.next_stage
    if to_stage is not None and (target is None or to_stage != target.id):
        following = f"the next stage is {target.id}" if target else "this is the last stage"
        raise Refused(f"advance goes one stage at a time: {following}, not {to_stage}")
    if not actions.advance.allowed:
        raise Refused(f"advance refused: {actions.advance.reason}")
    assert target is not None
    if confirm != target.percent:
        raise Refused(
            f"advance refused: you typed {confirm} but {target.title} runs at "
            f"{target.percent} %; type {target.percent} to confirm"
        )
    try:
        with session.journal.action_lock(f"advance to {target.percent} %"):
            # Someone may have moved between our look and the lock.
            fresh, _ = session.state()
            if (fresh.stage_id, fresh.visit) != (state.stage_id, state.visit) or fresh.pending:
                raise Refused("advance refused: the journal changed meanwhile; look again")
            return await _change(
                session,
                flag,
                move="advance",
                state=fresh,
                target=target,
                percent=target.percent,
                reason="",
                progress=progress,
                attempts=1,
                retry_delay_s=0,
            )
    except ActionBusy as exc:
        raise Refused(f"advance refused: {exc}") from None


async def stepback(
    session: Session,
    flag: Flag,
    *,
    reason: str,
    progress: Progress = _quiet,
    attempts: int | None = None,
    retry_delay_s: float = 2.0,
) -> Outcome:
    """Back to the previous stage's percent: toward safety, so no gate or hold applies."""
    state, _ = session.state()
    actions = decide(session.runbook, state, datetime.now(UTC), None)
    if not actions.stepback.allowed or actions.previous_stage is None:
        raise Refused(f"step back refused: {actions.stepback.reason}")
    if not reason.strip():
        raise Refused("step back needs a reason (it goes in the journal)")
    target = actions.previous_stage
    return await _safely(
        session,
        flag,
        "stepback",
        state,
        target,
        target.percent,
        reason,
        progress,
        attempts,
        retry_delay_s,
    )


async def rollback(
    session: Session,
    flag: Flag,
    *,
    reason: str,
    to_stage: str | None = None,
    progress: Progress = _quiet,
    attempts: int | None = None,
    retry_delay_s: float = 2.0,
) -> Outcome:
    """Emergency rollback, default to 0 %. Never refused for a gate, a stale query, a missing
    sign-off or what the journal believes: it sets what the flag must read, and retries until
    verified (or `attempts` run out, or the task is cancelled)."""
    if not reason.strip():
        raise Refused("rollback needs a reason (it goes in the journal)")
    state, _ = session.state()
    if to_stage is None:
        target, percent = rollback_stage(session.runbook, state), 0
    else:
        try:
            target = session.runbook.stage(to_stage)
        except KeyError:
            known = ", ".join(s.id for s in session.runbook.stages)
            raise Refused(f"no stage {to_stage!r}; stages: {known}") from None
        percent = target.percent
        # Toward safety only: a "rollback" to a later stage or a higher percent would be an
        # advance without its guards.
        book = session.runbook
        current = book.stage(state.stage_id)
        ahead = book.stage_index(target.id) > book.stage_index(current.id)
        if ahead or percent > max(current.percent, state.percent):
            raise Refused(
                f"rollback goes back, not forward: {target.id} ({percent} %) is past the "
                f"current stage {current.id} ({current.percent} %); use advance to go there"
            )
    return await _safely(
        session, flag, "rollback", state, target, percent, reason, progress, attempts, retry_delay_s
    )


async def _safely(
    session, flag, move, state, target, percent, reason, progress, attempts, retry_delay_s
) -> Outcome:
    # Toward safety we wait for a busy lock (a crashed holder releases it) instead of
    # refusing, saying who holds it, and take a fresh look once we have it.
    waited = 0.0
    while True:
        try:
            with session.journal.action_lock(f"{move} to {percent} %"):
                fresh, _ = session.state()
                if fresh.pending is not None:
                    await reconcile(session, flag, progress=progress)
                    fresh, _ = session.state()
                return await _change(
                    session,
                    flag,
                    move=move,
                    state=fresh,
                    target=target,
                    percent=percent,
                    reason=reason,
                    progress=progress,
                    attempts=attempts,
                    retry_delay_s=retry_delay_s,
                )
        except ActionBusy as exc:
            if waited == 0 or waited % 10 < 1:
                progress(f"waiting for the action lock: {exc.holder}")
            await asyncio.sleep(1.0)
            waited += 1.0


async def reconcile(session: Session, flag: Flag, progress: Progress = _quiet) -> list[str]:
    """Close an intent with no outcome (a crash mid-action) by what the flag reads now.

    Callers hold the action lock or check that nobody does; a live action elsewhere is not
    a crash. Returns what it told the operator."""
    state, _ = session.state()
    pending = state.pending
    if pending is None:
        return []
    try:
        read = await flag.read()
    except FlagError as exc:
        line = (
            f"{pending.move} by {pending.actor} at {pending.at:%Y-%m-%d %H:%M:%S}Z has no "
            f"outcome, and the flag cannot be read to settle it: {exc}"
        )
        progress(line)
        return [line]
    problem = _verified(read, pending.to_percent)
    if problem is None:
        session.journal.append(
            f"{pending.move}.done",
            action=pending.action,
            flag_percent=read.percent,
            reconciled=True,
            verified=f"reconciled after an interruption: flag reads {read.percent} %",
        )
        line = (
            f"reconciled: {pending.move} to {pending.to_percent} % by {pending.actor} was "
            f"interrupted but took effect (flag reads {read.percent} %)"
        )
    else:
        session.journal.append(
            f"{pending.move}.failed",
            action=pending.action,
            flag_percent=read.percent,
            reconciled=True,
            error=f"interrupted; {problem}",
        )
        line = (
            f"reconciled: {pending.move} to {pending.to_percent} % by {pending.actor} was "
            f"interrupted and did not take effect ({problem})"
        )
    progress(line)
    return [line]


async def reconcile_if_idle(session: Session, flag: Flag) -> list[str]:
    """Reconcile only when no other process is mid-action (it holds the lock while it acts)."""
    state, _ = session.state()
    if state.pending is None:
        return []
    try:
        with session.journal.action_lock("reconcile"):
            return await reconcile(session, flag)
    except ActionBusy as exc:
        return [f"an action is in flight: {exc.holder}"]
