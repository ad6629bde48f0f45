"""One change of the flag, journaled before it takes effect (intent, fsynced) and after (the
outcome), done only once the flag reads back the new value live (DESIGN principles 3, 4, 6)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from cutover.base.errors import CutoverError
from cutover.judge.session import Session
from cutover.record import spill
from cutover.record.events import Kind, move_kind
from cutover.record.journal import Event
from cutover.record.state import CutoverState
from cutover.runbook.model import Stage
from cutover.traffic.flags import Flag, FlagError, FlagState

Progress = Callable[[str], None]
T = TypeVar("T")


def quiet(line: str) -> None:
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


def why_unverified(state: FlagState, percent: int) -> str | None:
    """Why the read-back does not show the change as done, or None when it does."""
    if state.percent != percent:
        return f"the flag reads {state.percent} %, not {percent} %"
    if not state.in_effect:
        return f"the flag reads {percent} % but it is not live yet ({state.detail})"
    return None


def _settled_at(read: FlagState | None, percent: int) -> bool:
    """The flag already reads `percent`, it is live, and nothing in flight can change that."""
    return read is not None and read.settled and why_unverified(read, percent) is None


async def _read_before(flag: Flag, move: str, progress: Progress) -> FlagState | None:
    """What the flag reads before a move changes it; None (and a line) when it cannot be
    read. A rollback goes ahead regardless; advance and step back have read it already."""
    try:
        return await flag.read()
    except FlagError as exc:
        progress(f"{move}: cannot read the flag before changing it ({exc}); going ahead")
        return None


async def change_flag(
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
    before: FlagState | None = None,
    read_first: bool = False,
    extra: dict | None = None,
) -> Outcome:
    """Journal the intent, set and verify (retrying when asked), journal the outcome.

    Interrupted (cancelled) after the intent, it journals nothing more: whether the change
    took effect is not known here (a redeploy may still be building), and the next command
    settles the intent by what the flag reads once it is final (`reconcile`)."""
    action = uuid.uuid4().hex[:12]
    started = time.monotonic()
    fields: dict = {
        "action": action,
        "from_stage": state.stage_id,
        "to_stage": target.id,
        # What the flag read, when it was read before the intent; a rollback journals its
        # intent first (it must be durable before anything else) and reads after.
        "from_percent": before.percent if before is not None else None,
        "journal_percent": state.percent,
        "to_percent": percent,
        "reason": reason,
    }
    if before is not None:
        fields["flag_read"] = before.summary()
    fields.update(extra or {})
    intent = _write(session, move, move_kind(move, "intent"), fields, progress)
    shown_from = f"{before.percent} %" if before is not None else f"{state.percent} % (journal)"
    progress(f"{move}: {shown_from} → {percent} % ({target.title}), journaled")
    if read_first:
        before = await _read_before(flag, move, progress)
    if _settled_at(before, percent):
        # Nothing to do: say so and journal it, without touching production.
        assert before is not None
        took = time.monotonic() - started
        done = _write(
            session,
            move,
            move_kind(move, "done"),
            dict(
                action=action,
                flag_percent=before.percent,
                from_percent=before.percent,
                unchanged=True,
                verified=f"the flag already read {percent} % and it was live; production not "
                "touched",
                took_s=round(took, 1),
                attempts=0,
            ),
            progress,
        )
        progress(f"✓ the flag already reads {percent} % and it is live: nothing to change")
        return Outcome(
            move,
            True,
            before.percent if before.percent is not None else state.percent,
            percent,
            target.id,
            took,
            0,
            f"{move}: the flag already reads {percent} % and it is live; production not touched",
            before,
            done.ts if done else datetime.now(UTC),
        )
    trying = _attempts(flag, percent, progress, attempts, retry_delay_s)
    if move == "rollback" or intent is None:
        read_back, attempt, last_error = await trying
    else:  # a rollback from anywhere preempts this move: it watches the journal meanwhile
        preempted = await _unless_rolled_back(session, intent.seq, trying)
        if isinstance(preempted, Event):
            return _superseded(session, move, action, state, target, percent, preempted, started)
        read_back, attempt, last_error = preempted
    from_percent = before.percent if before is not None else None
    took = time.monotonic() - started
    if read_back is None:
        _write(
            session,
            move,
            move_kind(move, "failed"),
            dict(action=action, error=last_error, from_percent=from_percent, took_s=round(took, 1)),
            progress,
        )
        progress(f"✗ {move} failed after {attempt} attempt(s): {last_error}")
        return Outcome(
            move,
            False,
            from_percent if from_percent is not None else state.percent,
            percent,
            target.id,
            took,
            attempt,
            f"{move} to {percent} % failed: {last_error}",
        )
    verified = f"flag reads {read_back.percent} %" + (
        f"; {read_back.detail}" if read_back.detail else ""
    )
    done = _write(
        session,
        move,
        move_kind(move, "done"),
        dict(
            action=action,
            flag_percent=read_back.percent,
            from_percent=from_percent,
            verified=verified,
            took_s=round(took, 1),
            attempts=attempt,
        ),
        progress,
    )
    progress(f"✓ {move} verified in {took:.1f}s: {verified}")
    return Outcome(
        move,
        True,
        from_percent if from_percent is not None else state.percent,
        percent,
        target.id,
        took,
        attempt,
        f"{move} to {percent} % verified in {took:.1f}s",
        read_back,
        done.ts if done else datetime.now(UTC),
    )


def _write(
    session: Session, move: str, kind: Kind, fields: dict, progress: Progress
) -> Event | None:
    """Journal one record of the move. A rollback goes ahead when the journal cannot be
    written (a full disk, an immutable file): its record is spilled where it can go, said,
    and folded into the journal later (record/spill.py). Every other move stays refused."""
    try:
        return session.journal.append(kind, **fields)
    except OSError as exc:
        if move != "rollback":
            raise
        kept = spill.spill(session.journal, kind, fields, exc.strerror or str(exc))
        progress(f"! {kept.said()}")
        if kept.where is None:
            progress(kept.line)  # the terminal is the only record left
        return None


async def _unless_rolled_back(
    session: Session, after_seq: int, trying: Awaitable[T], poll_s: float = 0.25
) -> T | Event:
    """`trying`'s result, or the rollback intent (from any process) that appeared in the
    journal after `after_seq` first; the attempt is then cancelled (a redeploy is no longer
    waited on, nothing more is set)."""
    task = asyncio.ensure_future(trying)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            for event in session.journal.tail_since(after_seq):
                if event.kind == Kind.ROLLBACK_INTENT:
                    return event
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, FlagError):
                await task


def _superseded(
    session: Session,
    move: str,
    action: str,
    state: CutoverState,
    target: Stage,
    percent: int,
    rollback: Event,
    started: float,
) -> Outcome:
    took = time.monotonic() - started
    by = f"the rollback by {rollback.actor} (seq {rollback.seq})"
    session.journal.append(
        move_kind(move, "failed"),
        action=action,
        superseded_by=rollback.get("action"),
        error=f"superseded by {by}: it stopped waiting and set nothing more",
        took_s=round(took, 1),
    )
    return Outcome(
        move,
        False,
        state.percent,
        percent,
        target.id,
        took,
        1,
        f"{move} to {percent} % superseded by {by}",
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
    attempt, delay, last_error, shown = 0, retry_delay_s, "", ""
    while True:
        attempt += 1
        lasting = False  # a refusal (bad token, wrong project) that waiting will not cure
        try:
            read_back = await flag.set(percent, progress)
            problem = why_unverified(read_back, percent)
            if problem is None:
                return read_back, attempt, ""
            last_error = f"not verified: {problem}"
        except FlagError as exc:
            # The journal gets the message; what the tool printed is for the screen only.
            last_error, lasting = exc.journaled, not exc.retryable
            shown = str(exc)
        else:
            shown = last_error
        if attempts is not None and attempt >= attempts:
            if shown != last_error:
                progress(f"attempt {attempt} failed: {shown}")
            return None, attempt, last_error
        # A rollback keeps trying whatever failed; a lasting failure needs a human meanwhile.
        todo = "; it will not pass by itself: fix it while this retries" if lasting else ""
        progress(f"attempt {attempt} failed: {shown}{todo}; retrying in {delay:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
