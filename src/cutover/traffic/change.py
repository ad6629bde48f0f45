"""One change of the flag, journaled before it takes effect (intent, fsynced) and after (the
outcome), done only once the flag reads back the new value live (DESIGN principles 3, 4, 6)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from cutover.base.errors import CutoverError
from cutover.judge.session import Session
from cutover.record import spill
from cutover.record.events import Kind, move_kind, move_words
from cutover.record.journal import Event
from cutover.record.state import CutoverState
from cutover.runbook.model import Stage
from cutover.traffic import deployments
from cutover.traffic.attempts import BUILD_BACKOFF_S, Tried, why_unverified
from cutover.traffic.attempts import attempts as try_until
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
    live_s: float | None = None  # from the intent to traffic getting the new value


__all__ = ["Outcome", "Refused", "change_flag", "quiet", "why_unverified"]


def _settled_at(read: FlagState | None, percent: int) -> bool:
    """The flag already reads `percent`, it is live, and nothing in flight can change that."""
    return read is not None and read.settled and why_unverified(read, percent) is None


async def _read_before(flag: Flag, move: str, progress: Progress) -> FlagState | None:
    """What the flag reads before a move changes it; None (and a line) when it cannot be
    read. A rollback goes ahead regardless; advance and step back have read it already."""
    try:
        return await flag.read()
    except FlagError as exc:
        said = move_words(move)
        progress(f"{said}: cannot read the flag before changing it ({exc}); going ahead")
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
    how: str = "auto",
    build_backoff_s: Sequence[float] = BUILD_BACKOFF_S,
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
        # What production served before the move (the deployment live before the first
        # advance among them) is known to carry what the flag read: an instant rollback's
        # target, one day.
        serving = deployments.fact(session, before)
        if serving is not None:
            fields["serving"] = serving
    fields.update(extra or {})
    intent = _write(session, move, move_kind(move, "intent"), fields, progress)
    shown_from = f"{before.percent} %" if before is not None else _journal_percent(session, state)
    recorded = "journaled" if intent is not None else "kept locally (see above)"
    progress(f"{move_words(move)}: {shown_from} → {percent} % ({target.title}), {recorded}")
    learned: dict = {}  # what the reading after the intent taught, for the outcome
    if read_first:
        before = await _read_before(flag, move, progress)
        served_before = deployments.fact(session, before)
        if served_before is not None:
            learned["served_before"] = served_before
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
                **learned,
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
            f"{move_words(move)}: the flag already reads {percent} % and it is live; "
            "production not touched",
            before,
            done.ts if done else datetime.now(UTC),
        )
    trying = try_until(
        flag,
        percent,
        progress,
        attempts,
        retry_delay_s,
        move=move,
        how=how,
        build_backoff_s=build_backoff_s,
    )
    if move == "rollback" or intent is None:
        tried = await trying
    else:  # a rollback from anywhere preempts this move: it watches the journal meanwhile
        preempted = await _unless_rolled_back(session, intent.seq, trying)
        if isinstance(preempted, Event):
            return _superseded(session, move, action, state, target, percent, preempted, started)
        tried = preempted
    read_back, attempt, last_error = tried.read_back, tried.attempts, tried.error
    from_percent = before.percent if before is not None else None
    took = time.monotonic() - started
    if read_back is None:
        failed = dict(
            action=action, error=last_error, from_percent=from_percent, took_s=round(took, 1)
        )
        if tried.fallback:
            failed["fallback"] = tried.fallback
        failed.update(learned)
        _write(session, move, move_kind(move, "failed"), failed, progress)
        progress(f"✗ {move_words(move)} failed after {attempt} attempt(s): {last_error}")
        return Outcome(
            move,
            False,
            from_percent if from_percent is not None else state.percent,
            percent,
            target.id,
            took,
            attempt,
            f"{move_words(move)} to {percent} % failed: {last_error}",
        )
    verified = f"flag reads {read_back.percent} %" + (
        f"; {read_back.detail}" if read_back.detail else ""
    )
    # Rounded once: the screen and the journal say the same number.
    live_s = round((read_back.live_at - started) if read_back.live_at is not None else took, 2)
    effect = f"live in {live_s:.1f} s" + (f" by {read_back.how}" if read_back.how else "")
    fields = dict(
        action=action,
        flag_percent=read_back.percent,
        from_percent=from_percent,
        verified=verified,
        took_s=round(took, 1),
        attempts=attempt,
        live_s=round(live_s, 2),
        effect=effect,
    )
    fields.update(_platform_fields(state, read_back, tried))
    fields.update(learned)
    serving = deployments.fact(session, read_back, seen="built")
    if serving is not None:
        fields["serving"] = serving
    done = _write(session, move, move_kind(move, "done"), fields, progress)
    progress(f"✓ {move_words(move)} verified in {took:.1f}s: {verified}")
    if read_back.pinned:
        progress(f"! {deployments.pinned_note(read_back.pinned, done.ts if done else None)}")
    return Outcome(
        move,
        True,
        from_percent if from_percent is not None else state.percent,
        percent,
        target.id,
        took,
        attempt,
        f"{move_words(move)} to {percent} % verified in {took:.1f}s; {effect}",
        read_back,
        done.ts if done else datetime.now(UTC),
        live_s,
    )


def _journal_percent(session: Session, state: CutoverState) -> str:
    """The percent the record says, for a move that has not read the flag yet; a store that
    could never be read says nothing (its state is only where a cutover starts)."""
    if session.record_unread():
        return "? % (the record cannot be read)"
    return f"{state.percent} % (journal)"


def _platform_fields(state: CutoverState, read_back: FlagState, tried: Tried) -> dict:
    """What a done move says of the platform: how traffic got the value, the deployment it
    serves, whether production is pinned (said, or cleared once it is not)."""
    out: dict = {}
    if read_back.how:
        out["how"] = "instant" if read_back.how.startswith("instant") else "build"
    if read_back.serving is not None:
        out["deployment"] = read_back.serving.id
    if read_back.pinned or state.pinned is not None:
        out["pinned"] = read_back.pinned
    if read_back.pinned:
        out["pinned_note"] = deployments.pinned_note(read_back.pinned, datetime.now(UTC))
    if read_back.promoted:
        out["promoted"] = read_back.promoted
    if tried.fallback:
        out["fallback"] = tried.fallback
    return out


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
        why = getattr(exc, "short", None) or exc.strerror or str(exc)
        kept = spill.spill(session.journal, kind, fields, why)
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
