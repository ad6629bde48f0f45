"""`cutover advance`, `rollback` and `stepback`: the headless way to move traffic."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cutover.cli.common import ERROR, FAIL, OK, WAIT, UsageError, err, out, session_for
from cutover.judge.check import CheckReport
from cutover.judge.session import Session
from cutover.record import urgent
from cutover.record.events import move_words
from cutover.record.journal import ActionBusy
from cutover.sources import db
from cutover.sources.observe import Unobservable, wait_until_effective
from cutover.traffic import actions, settling
from cutover.traffic.detach import outlive_terminal
from cutover.traffic.flags import Flag, open_flag_or_none


async def reconcile_on_start(session: Session, flag: Flag) -> None:
    """A crashed action is settled by the next command that starts, whichever it is. A
    journal that cannot be written is said, never a reason to stop (a rollback must go on;
    every other move is refused when it journals its intent)."""
    try:
        lines = await settling.reconcile_if_idle(session, flag)
    except OSError as exc:
        lines = [f"an interrupted move cannot be settled: the journal cannot be written ({exc})"]
    for line in lines:
        err(f"! {line}")


def _say(line: str) -> None:
    out(f"{datetime.now(UTC):%H:%M:%S}  {line}")


def _flag(session: Session) -> Flag:
    flag, problem = open_flag_or_none(session)
    if flag is None:
        raise UsageError(f"the flag cannot be reached: {problem}")
    return flag


async def _gates(session: Session) -> tuple[CheckReport | None, dict | None]:
    """The current stage's gates and every trigger, and every query's result (the stage's
    exit snapshot); (None, None) without a database, so advance is refused when there is
    anything to judge."""
    state, _ = session.state()
    stage = session.runbook.stage(state.stage_id)
    try:
        runner = session.runner()
    except db.DatabaseUnavailable as exc:
        if stage.gates or session.runbook.triggers:
            err(f"! gates cannot be checked: {exc}")
        return None, None
    try:
        report, results = await session.check(runner, stage, every_query=True)
        return report, results
    finally:
        await runner.aclose()


async def _move(
    session: Session,
    do: Callable[[Flag], Awaitable[actions.Outcome]],
    *,
    then: Callable[[actions.Outcome], Awaitable[int]] | None = None,
) -> int:
    """Open the flag, settle any crashed action, do the move, say how it went."""
    flag = _flag(session)
    try:
        await reconcile_on_start(session, flag)
        outcome = await do(flag)
    except actions.Refused as exc:
        err(str(exc))
        return FAIL
    finally:
        await flag.aclose()
    out(outcome.message)
    if not outcome.ok:
        return ERROR
    return await then(outcome) if then else OK


def cmd_advance(args: argparse.Namespace) -> int:
    session = session_for(args)

    async def advance(flag: Flag) -> actions.Outcome:
        report, results = await _gates(session)
        return await actions.advance(
            session,
            flag,
            report=report,
            results=results,
            confirm=args.confirm,
            to_stage=args.to,
            progress=_say,
            overrides=args.override,
            note=args.note,
        )

    return asyncio.run(_move(session, advance))


def cmd_stepback(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError("step back changes production traffic: add --yes to do it")
    session = session_for(args)
    return asyncio.run(
        _move(
            session, lambda flag: actions.stepback(session, flag, reason=args.reason, progress=_say)
        )
    )


def cmd_rollback(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError("rollback changes production traffic: add --yes to do it")
    # Everything this command asks the store, folding old spills and settling an open intent
    # first included, waits for a silent store once and briefly.
    with urgent.rollback():
        return _rollback(args)


def _rollback(args: argparse.Namespace) -> int:
    session = session_for(args)

    how = getattr(args, "how", "auto")

    def say(line: str) -> None:
        _say(line)
        if line.startswith("no instant rollback:") and "would also revert" in line:
            # The redeploy is what --yes alone takes; the instant way is one flag away.
            _say(
                "  to roll back instantly anyway, reverting those commits: cutover rollback "
                "--instant --yes --reason …"
            )

    def rollback(flag: Flag) -> Awaitable[actions.Outcome]:
        return actions.rollback(
            session, flag, reason=args.reason, to_stage=args.to, progress=say, how=how
        )

    log = session.runbook.journal_path.with_name("detached.log")
    try:
        with outlive_terminal(_say, log) as signalled:

            async def then(outcome: actions.Outcome) -> int:
                if signalled:  # nobody is watching any more: the journal has the outcome
                    return OK
                return await _observe(session, outcome, args.observe)

            return asyncio.run(_move(session, rollback, then=then))
    except KeyboardInterrupt:
        err(
            "rollback stopped by the operator before it was verified: its intent stays open "
            "and the next command settles it by what the flag reads; run `cutover status`"
        )
        return ERROR


async def _observe(session: Session, outcome: actions.Outcome, timeout_s: float) -> int:
    """After a verified rollback to 0 %, watch traffic until it shows none on the new path."""
    if session.runbook.flag.observed is None or timeout_s <= 0 or outcome.to_percent != 0:
        return OK
    try:
        runner = session.runner(1)  # the observed share only
        await runner.connect()
    except db.DatabaseUnavailable as exc:
        err(f"! cannot watch traffic: {exc}")
        return OK
    try:
        effective, seen, waited = await wait_until_effective(
            session.runbook,
            runner,
            outcome.done_at or datetime.now(UTC),
            timeout_s=timeout_s,
            progress=_say,
            environ=session.environ,
        )
    except Unobservable as exc:
        err(f"! cannot watch traffic: {exc}")
        return OK
    finally:
        await runner.aclose()
    total = outcome.took_s + waited
    if effective:
        out(
            f"✓ rollback effective: {seen} since it took effect; {total:.0f}s from command "
            "to no new traffic on the new path"
        )
        return OK
    err(
        f"! rollback verified on the flag, but traffic does not show it yet after "
        f"{waited:.0f}s: {seen}"
    )
    return WAIT


def settle(session: Session) -> None:
    """Before a command that reads the state: close a crashed action's intent, if any."""
    state, _ = session.state()
    if state.pending is None:
        return
    flag, problem = open_flag_or_none(session)
    if flag is None:
        err(
            f"! {move_words(state.pending.move)} by {state.pending.actor} has no outcome and "
            f"the flag cannot be read to settle it: {problem}"
        )
        return

    async def go() -> None:
        try:
            await reconcile_on_start(session, flag)
        finally:
            await flag.aclose()

    asyncio.run(go())


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Record what the flag reads after a drift (an interrupted move that did take effect,
    a hand edit on the platform), so the journal tells the truth again."""
    session = session_for(args)
    flag = _flag(session)

    async def go() -> settling.Reconciled:
        try:
            return await settling.record_reading(session, flag, note=args.note, progress=_say)
        finally:
            await flag.aclose()

    try:
        result = asyncio.run(go())
    except ActionBusy as exc:
        err(f"reconcile refused: {exc}")
        return FAIL
    (out if result.consistent else err)(result.message)
    return OK if result.consistent else FAIL
