"""Changing where traffic goes: advance, step back, rollback, and reconciling a crashed one.

Every change is journaled before it takes effect (intent, fsynced) and after (outcome, with
what was verified), and counts as done only when the flag reads back the new value and, where
the platform needs it, a new deployment carrying it is live (DESIGN principles 3, 4, 6).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cutover.base.errors import CutoverError
from cutover.judge.check import CheckReport, GateReport
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.record import snapshots
from cutover.record.events import Kind, move_kind
from cutover.record.journal import ActionBusy
from cutover.record.state import CutoverState
from cutover.runbook.model import Stage
from cutover.sources.results import QueryResult
from cutover.traffic.flags import Flag, FlagError, FlagState
from cutover.traffic.machine import decide, flag_disagrees, next_stage, rollback_stage

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


def _settled_at(read: FlagState | None, percent: int) -> bool:
    """The flag already reads `percent`, it is live, and nothing in flight can change that."""
    return read is not None and read.settled and _verified(read, percent) is None


async def _read_before(flag: Flag, move: str, progress: Progress) -> FlagState | None:
    """What the flag reads before a move changes it; None (and a line) when it cannot be
    read. A rollback goes ahead regardless; advance and step back have read it already."""
    try:
        return await flag.read()
    except FlagError as exc:
        progress(f"{move}: cannot read the flag before changing it ({exc}); going ahead")
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
    session.journal.append(move_kind(move, "intent"), **fields)
    shown_from = f"{before.percent} %" if before is not None else f"{state.percent} % (journal)"
    progress(f"{move}: {shown_from} → {percent} % ({target.title}), journaled")
    if read_first:
        before = await _read_before(flag, move, progress)
    if _settled_at(before, percent):
        # Nothing to do: say so and journal it, without touching production.
        assert before is not None
        took = time.monotonic() - started
        done = session.journal.append(
            move_kind(move, "done"),
            action=action,
            flag_percent=before.percent,
            from_percent=before.percent,
            unchanged=True,
            verified=f"the flag already read {percent} % and it was live; production not touched",
            took_s=round(took, 1),
            attempts=0,
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
            done.ts,
        )
    read_back, attempt, last_error = await _attempts(
        flag, percent, progress, attempts, retry_delay_s
    )
    from_percent = before.percent if before is not None else None
    took = time.monotonic() - started
    if read_back is None:
        session.journal.append(
            move_kind(move, "failed"),
            action=action,
            error=last_error,
            from_percent=from_percent,
            took_s=round(took, 1),
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
    done = session.journal.append(
        move_kind(move, "done"),
        action=action,
        flag_percent=read_back.percent,
        from_percent=from_percent,
        verified=verified,
        took_s=round(took, 1),
        attempts=attempt,
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
    results: Mapping[str, QueryResult] | None = None,
    overrides: Sequence[str] = (),
    note: str = "",
) -> Outcome:
    """Go to the next stage: guarded by sign-offs, hold, gates, triggers, the flag reading
    what the journal says, and the typed percent. `results` (every query's, when the caller
    has them) become the stage's exit snapshot: a later stage's baseline.

    `overrides` name gates to advance past while they WAIT (never a FAIL), with `note`
    saying why: the move's journal entries carry both, and every later view shows them."""
    if overrides and not note.strip():
        raise Refused(
            "advance refused: an override needs a note saying why advancing past the gate is "
            "safe (--note; it goes in the journal)"
        )
    looked, _ = session.state()
    upcoming = next_stage(session.runbook, looked)
    what = f"advance to {upcoming.percent} %" if upcoming else "advance"
    try:
        with session.journal.action_lock(what):
            state, _ = session.state()
            try:
                read = await flag.read()
            except FlagError as exc:
                # The platform is unreachable: an error (exit 2), not a refusal by the guards.
                raise FlagError(
                    f"advance refused: the flag cannot be read: {exc}", retryable=exc.retryable
                ) from None
            when = now or datetime.now(UTC)
            waiting = _overridable(session, state, report, overrides, progress)
            hold = session.judge_hold(state, when, report, without=[g.id for g in waiting])
            actions = decide(session.runbook, state, when, report, read, hold, overrides)
            target = actions.next_stage
            if to_stage is not None and (target is None or to_stage != target.id):
                following = f"the next stage is {target.id}" if target else "this is the last stage"
                raise Refused(f"advance goes one stage at a time: {following}, not {to_stage}")
            if not actions.advance.allowed:
                raise Refused(f"advance refused: {actions.advance.reason}")
            if report is not None and report.stage_id != state.stage_id:
                raise Refused("advance refused: the journal changed meanwhile; look again")
            stage = session.runbook.stage(state.stage_id)
            if results:
                _exit_snapshot(session, state, results, when, progress)
            if target is None:
                # Past the last stage there is no traffic to move: the cutover is done.
                if confirm != stage.percent:
                    raise Refused(
                        f"complete refused: you typed {confirm} but the cutover ends at "
                        f"{stage.percent} %; type {stage.percent} to confirm"
                    )
                done = session.journal.append(
                    Kind.COMPLETE,
                    stage=stage.id,
                    flag_read=read.summary(),
                    hold_s=hold.held_s,
                    **_override_fields(waiting, note, progress),
                )
                progress(f"✓ the cutover is complete ({stage.title}, {stage.percent} %)")
                return Outcome(
                    "complete",
                    True,
                    stage.percent,
                    stage.percent,
                    stage.id,
                    0.0,
                    0,
                    f"the cutover is complete at {stage.percent} % ({stage.title})",
                    read,
                    done.ts,
                )
            if confirm != target.percent:
                raise Refused(
                    f"advance refused: you typed {confirm} but {target.title} runs at "
                    f"{target.percent} %; type {target.percent} to confirm"
                )
            return await _change(
                session,
                flag,
                move="advance",
                state=state,
                target=target,
                percent=target.percent,
                reason="",
                progress=progress,
                attempts=1,
                retry_delay_s=0,
                before=read,
                extra=_override_fields(waiting, note, progress),
            )
    except ActionBusy as exc:
        raise Refused(f"advance refused: {exc}") from None


def _exit_snapshot(
    session: Session,
    state: CutoverState,
    results: Mapping[str, QueryResult],
    at: datetime,
    progress: Progress,
) -> None:
    """Save every query's result as the stage's exit snapshot (first writer wins). A disk
    problem is said, never a reason to refuse the advance the guards allowed."""
    folder = snapshots.snapshots_dir(session.runbook.journal_path)
    try:
        snapshots.take(folder, state.stage_id, state.visit, snapshots.EXIT, results, at)
    except (OSError, ValueError) as exc:
        progress(f"! the exit snapshot of {state.stage_id} could not be saved: {exc}")


def _overridable(
    session: Session,
    state: CutoverState,
    report: CheckReport | None,
    overrides: Sequence[str],
    progress: Progress,
) -> list[GateReport]:
    """The named gates an advance may pass while they WAIT. A name that is no gate of the
    stage is refused (a typo must not read as an override); a gate that passes needs none."""
    if not overrides:
        return []
    stage = session.runbook.stage(state.stage_id)
    known = {g.id for g in stage.gates}
    checklist = session.runbook.rollback
    if state.after_rollback is not None and checklist is not None:
        known |= {g.id for g in checklist.gates}  # the rollback checklist's, while it is open
    unknown = [g for g in overrides if g not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise Refused(
            f"advance refused: no gate {', '.join(unknown)} in stage {stage.id} to override; "
            f"its gates: {listed}"
        )
    if report is None or report.stage_id != stage.id:
        return []  # nothing judged: decide says so
    out = []
    for gate in (*report.gates, *report.rollback_gates):
        if gate.id not in overrides:
            continue
        if gate.verdict is Verdict.PASS:
            progress(f"gate {gate.id} passes: no override needed, none journaled")
        elif gate.verdict is Verdict.WAIT:
            out.append(gate)
    return out


def _override_fields(waiting: list[GateReport], note: str, progress: Progress) -> dict:
    """What the journal keeps of an override: each gate with the reason it was waiting,
    and the operator's note."""
    if not waiting:
        return {}
    for gate in waiting:
        progress(f"! advancing past gate {gate.id} (WAIT: {gate.judgement.reason}): {note}")
    return {
        "overrides": [{"gate": g.id, "reason": g.judgement.reason} for g in waiting],
        "override_note": note,
    }


async def stepback(
    session: Session,
    flag: Flag,
    *,
    reason: str,
    progress: Progress = _quiet,
    attempts: int | None = None,
    retry_delay_s: float = 2.0,
) -> Outcome:
    """Back to the previous stage's percent: toward safety, so no gate or hold applies; but
    it starts from what the flag reads, so it refuses while that disagrees with the journal
    (rollback does not)."""
    if not reason.strip():
        raise Refused("step back needs a reason (it goes in the journal)")

    async def check(fresh: CutoverState) -> tuple[Stage, int, FlagState]:
        try:
            read = await flag.read()
        except FlagError as exc:
            raise Refused(f"step back refused: the flag cannot be read: {exc}") from None
        actions = decide(session.runbook, fresh, datetime.now(UTC), None, read)
        if not actions.stepback.allowed or actions.previous_stage is None:
            raise Refused(f"step back refused: {actions.stepback.reason}")
        return actions.previous_stage, actions.previous_stage.percent, read

    return await _safely(
        session, flag, "stepback", check, reason, progress, attempts, retry_delay_s
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
    sign-off, a broken journal or what the journal believes: it sets what the flag must
    read, and retries until verified (or `attempts` run out, or the task is cancelled).

    The minimum happens before the change: one fsynced intent. The flag is read after it
    (to record what traffic was at, and to touch nothing when it already reads the target
    and that is live)."""
    if not reason.strip():
        raise Refused("rollback needs a reason (it goes in the journal)")
    book = session.runbook

    async def target_of(fresh: CutoverState) -> tuple[Stage, int, None]:
        if to_stage is None:
            return rollback_stage(book, fresh), 0, None
        try:
            target = book.stage(to_stage)
        except KeyError:
            known = ", ".join(s.id for s in book.stages)
            raise Refused(f"no stage {to_stage!r}; stages: {known}") from None
        # Toward safety only: a "rollback" to a later stage or a higher percent would be an
        # advance without its guards.
        current = book.stage(fresh.stage_id)
        ahead = book.stage_index(target.id) > book.stage_index(current.id)
        if ahead or target.percent > max(current.percent, fresh.percent):
            raise Refused(
                f"rollback goes back, not forward: {target.id} ({target.percent} %) is past "
                f"the current stage {current.id} ({current.percent} %); use advance to go there"
            )
        return target, target.percent, None

    return await _safely(
        session, flag, "rollback", target_of, reason, progress, attempts, retry_delay_s
    )


async def _safely(
    session: Session,
    flag: Flag,
    move: str,
    choose: Callable[[CutoverState], Awaitable[tuple[Stage, int, FlagState | None]]],
    reason: str,
    progress: Progress,
    attempts: int | None,
    retry_delay_s: float,
) -> Outcome:
    """A move toward safety. It waits for a busy lock (a crashed holder releases it)
    instead of refusing, saying who holds it, and takes a fresh look once it has it. An
    intent left without outcome (an interrupted move) is superseded, not waited for."""
    waited = 0.0
    while True:
        try:
            with session.journal.action_lock(move):
                fresh, _ = session.state()
                target, percent, before = await choose(fresh)
                extra: dict = {}
                if fresh.pending is not None:
                    extra["supersedes"] = fresh.pending.action
                    progress(
                        f"{fresh.pending.move} by {fresh.pending.actor} has no outcome; "
                        f"this {move} supersedes it"
                    )
                chain = getattr(fresh, "chain", None)
                if chain is not None:
                    extra["chain_broken"] = getattr(chain, "summary", str(chain))
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
                    before=before,
                    read_first=before is None,
                    extra=extra,
                )
        except ActionBusy as exc:
            if waited == 0 or waited % 10 < 1:
                progress(f"waiting for the action lock: {exc.holder}")
            await asyncio.sleep(1.0)
            waited += 1.0


async def settle_pending(
    session: Session,
    flag: Flag,
    *,
    wait_s: float = 0.0,
    poll_s: float = 2.0,
    progress: Progress = _quiet,
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
    who = f"{pending.move} to {pending.to_percent} % by {pending.actor}"
    started = time.monotonic()
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
    problem = _verified(read, pending.to_percent)
    if problem is None:
        session.journal.append(
            move_kind(pending.move, "done"),
            action=pending.action,
            flag_percent=read.percent,
            reconciled=True,
            flag_read=read.summary(),
            verified=f"reconciled after an interruption: flag reads {read.percent} % and it "
            "is live",
        )
        line = f"reconciled: {who} was interrupted but took effect (flag reads {read.percent} %)"
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
    session: Session, flag: Flag, *, note: str = "", progress: Progress = _quiet
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
                f"the flag's stored value is not what traffic gets ({read.detail}): roll back "
                "(it sets and redeploys), or redeploy by hand, then reconcile",
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
