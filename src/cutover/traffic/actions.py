"""Moving traffic: advance (guarded by sign-offs, hold, gates and triggers), and step back and
rollback toward safety; each move is one journaled change of the flag (change.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cutover.judge.check import CheckReport, GateReport
from cutover.judge.hold import last_fail
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.record import snapshots, urgent
from cutover.record.events import Kind, move_words
from cutover.record.journal import ActionBusy
from cutover.record.state import CutoverState
from cutover.runbook.model import Stage
from cutover.sources.results import QueryResult
from cutover.traffic.attempts import BUILD_BACKOFF_S, HOW
from cutover.traffic.change import Outcome, Progress, Refused, change_flag, quiet
from cutover.traffic.flags import Flag, FlagError, FlagState
from cutover.traffic.machine import decide, next_stage, rollback_stage


async def advance(
    session: Session,
    flag: Flag,
    *,
    report: CheckReport | None,
    confirm: int,
    to_stage: str | None = None,
    progress: Progress = quiet,
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
            waiting = _overridable(session, state, report, overrides, progress, when)
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
            if target is None:
                if results:
                    _exit_snapshot(session, state, results, when, progress)
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
            outcome = await change_flag(
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
            # The stage's exit snapshot (the next stage's baseline) is the data the guards
            # allowed the move on, and it exists only once the move is verified: a refused
            # or failed advance leaves none to be mistaken for this visit's.
            if results and outcome.ok:
                _exit_snapshot(session, state, results, when, progress)
            return outcome
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
    try:
        session.store.take_snapshot(state.stage_id, state.visit, snapshots.EXIT, results, at)
    except (OSError, ValueError) as exc:
        progress(f"! the exit snapshot of {state.stage_id} could not be saved: {exc}")


def _overridable(
    session: Session,
    state: CutoverState,
    report: CheckReport | None,
    overrides: Sequence[str],
    progress: Progress,
    now: datetime,
) -> list[GateReport]:
    """The named gates an advance may pass while they WAIT. A name that is no gate of the
    stage is refused (a typo must not read as an override); a gate that passes needs none;
    a gate that FAILed during the current hold is refused: an override is for a gate that
    cannot decide, never for one that decided no."""
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
    if out:
        _refuse_what_failed(session, state, stage, out, now)
    return out


def _refuse_what_failed(
    session: Session, state: CutoverState, stage: Stage, waiting: list[GateReport], now: datetime
) -> None:
    """Refuse an override of a gate the evidence shows FAILing in this visit of the stage,
    within the hold it asks for (at most `hold` back; the whole visit without one)."""
    since = state.entered_at or datetime.min.replace(tzinfo=UTC)
    if stage.hold_s > 0:
        since = max(since, now - timedelta(seconds=stage.hold_s))
    runs = session.read_evidence(since).runs
    for gate in waiting:
        failed = last_fail(runs, gate.id, state.stage_id, since)
        if failed is not None:
            raise Refused(
                f"advance refused: gate {gate.id} FAILed during the current hold (until "
                f"{failed.last:%Y-%m-%d %H:%M}Z: {failed.reason}); an override is for a gate "
                "that cannot decide, never for one that decided no"
            )


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
    progress: Progress = quiet,
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
    progress: Progress = quiet,
    attempts: int | None = None,
    retry_delay_s: float = 2.0,
    how: str = "auto",
    build_backoff_s: Sequence[float] = BUILD_BACKOFF_S,
) -> Outcome:
    """Emergency rollback, default to 0 %. Never refused for a gate, a stale query, a missing
    sign-off, a broken journal or what the journal believes: it sets what the flag must
    read, and retries until verified (or `attempts` run out, or the task is cancelled, or
    the platform refuses who is asking and nothing here can change that).

    The minimum happens before the change: one fsynced intent. The flag is read after it
    (to record what traffic was at, and to touch nothing when it already reads the target
    and that is live). Where the flag can take traffic back without a build (Vercel's
    Instant Rollback to a deployment known to carry the target), that comes first: `how`
    "auto" takes it when it reverts no commit, "instant" also when it does, "redeploy"
    never. A rollback that must build backs off between builds (`build_backoff_s`)."""
    if not reason.strip():
        raise Refused("rollback needs a reason (it goes in the journal)")
    if how not in HOW:
        raise Refused(f"rollback how={how!r}: one of {', '.join(HOW)}")
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

    with urgent.rollback():  # a store that has gone silent keeps it waiting once, briefly
        return await _safely(
            session,
            flag,
            "rollback",
            target_of,
            reason,
            progress,
            attempts,
            retry_delay_s,
            _Ways(how, tuple(build_backoff_s)),
        )


@dataclass(frozen=True)
class _Ways:
    """How a move toward safety may reach traffic (see rollback)."""

    how: str = "auto"
    build_backoff_s: tuple[float, ...] = BUILD_BACKOFF_S


async def _safely(
    session: Session,
    flag: Flag,
    move: str,
    choose: Callable[[CutoverState], Awaitable[tuple[Stage, int, FlagState | None]]],
    reason: str,
    progress: Progress,
    attempts: int | None,
    retry_delay_s: float,
    ways: _Ways | None = None,
) -> Outcome:
    """A move toward safety. A rollback never waits behind another move: one in flight (an
    advance waiting on its build for up to deploy_timeout_s) is preempted: the rollback
    journals its intent at once, and the move, which watches the journal while it waits,
    stops and is journaled as superseded. Behind another rollback, or as a step back, it
    waits for the lock (a crashed holder releases it), saying who holds it. Either takes a
    fresh look first; an intent left without outcome (an interrupted move) is superseded,
    not waited for."""

    async def move_now() -> Outcome:
        fresh, _ = session.state()
        target, percent, before = await choose(fresh)
        extra: dict = {}
        if fresh.pending is not None:
            extra["supersedes"] = fresh.pending.action
            progress(
                f"{move_words(fresh.pending.move)} by {fresh.pending.actor} has no outcome; "
                f"this {move_words(move)} supersedes it"
            )
        chain = getattr(fresh, "chain", None)
        if chain is not None:
            extra["chain_broken"] = getattr(chain, "summary", str(chain))
        return await change_flag(
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
            how=(ways or _Ways()).how,
            build_backoff_s=(ways or _Ways()).build_backoff_s,
        )

    waited = 0.0
    while True:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(session.journal.action_lock(move))
            except ActionBusy as exc:
                # A rollback in flight is already going to safety: a second one waits for
                # it (and then finds nothing to change); anything else is preempted at once.
                if move != "rollback" or exc.what == "rollback":
                    if waited == 0 or waited % 10 < 1:
                        progress(f"waiting for the action lock: {exc.holder}")
                    await asyncio.sleep(1.0)
                    waited += 1.0
                    continue
                progress(f"{exc.holder}: this rollback preempts it (it stops and is superseded)")
            except OSError as exc:
                if move != "rollback":
                    raise
                # The lock file cannot be made or written (a full disk, a read-only folder):
                # nothing may stop a rollback.
                why = getattr(exc, "short", None) or exc.strerror or exc
                progress(f"! the action lock cannot be taken ({why}); going ahead")
            return await move_now()
