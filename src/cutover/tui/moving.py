"""The app's side of moving traffic: start a move on a thread of its own, stream its progress
lines to whichever dialog shows it, and let an emergency rollback pre-empt anything else in
flight."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from textual.worker import Worker

from cutover.base.inert import inert
from cutover.record.events import move_words
from cutover.sources import notify
from cutover.traffic import actions, flags
from cutover.tui.messages import ActionFinished, ActionLine
from cutover.tui.screens.moves import (
    INSTANT,
    AdvanceScreen,
    MoveScreen,
    RollbackScreen,
    StepBackScreen,
)

Start = Callable[[flags.Flag, Callable[[str], None]], Awaitable[object]]

MOVE_SWITCH_S = 0.0005  # how often the interpreter lock changes hands while a move runs


class _HandOver:
    """Every write, fsync and socket call of a move gives the interpreter lock back and takes
    it again; while the console draws, Python's default 5 ms hand-over adds up to tens of
    milliseconds before a rollback's PATCH. While any move runs, it is handed over sooner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._moves = 0
        self._before = sys.getswitchinterval()

    def begin(self) -> None:
        with self._lock:
            if self._moves == 0:
                self._before = sys.getswitchinterval()
                sys.setswitchinterval(min(self._before, MOVE_SWITCH_S))
            self._moves += 1

    def end(self) -> None:
        with self._lock:
            self._moves -= 1
            if self._moves == 0:
                sys.setswitchinterval(self._before)


_hand_over = _HandOver()


class MovesMixin:
    """Mixed into CutoverApp; expects session, flag, flag_error, cstate, permissions, report."""

    def init_moves(self) -> None:
        self.move_name: str | None = None
        self.move_worker: Worker | None = None
        self.move_lines: list[str] = []
        # Once the terminal is gone (SIGHUP) a rollback's lines go to detached.log beside
        # the journal, and its retries to every webhook: nobody is left to read the screen.
        self.detached_log: Path | None = None
        # A flag handed to the console (a test, an embedding) is the one moves use; otherwise
        # each move opens its own, on its own thread's event loop (see _run).
        self._flag_given = self.flag is not None

    # -- state the dialogs ask about ------------------------------------------------------

    def move_in_flight(self) -> str | None:
        worker = self.move_worker
        return self.move_name if worker is not None and not worker.is_finished else None

    def move_running(self, move: str) -> bool:
        return self.move_in_flight() == move

    def move_lines_for(self, move: str) -> list[str]:
        return list(self.move_lines) if self.move_running(move) else []

    # -- the keys: each dialog answers with dismiss(), then shows the move it started ------

    def action_advance(self) -> None:
        """The next stage; from the last one, completing the cutover (no flag touched)."""
        actions = self.permissions
        if actions is None or self.cstate.completed is not None:
            return

        def answered(confirm: int | None) -> None:
            if confirm is not None and self.cstate.stage_id == stage_id:
                self.start_advance(confirm)
                self.push_screen(self._advance_screen(started=True))

        stage_id = self.cstate.stage_id
        self.push_screen(self._advance_screen(), answered)

    def _advance_screen(self, *, started: bool = False) -> AdvanceScreen:
        stage = self.runbook.stage(self.cstate.stage_id)
        upcoming = self.permissions.next_stage if self.permissions else None
        overrides = [
            f"{s.step} ({s.note})" if s.note else s.step
            for s in self.cstate.signoffs.values()
            if s.override
        ]
        return AdvanceScreen(
            stage.percent,
            upcoming.percent if upcoming else stage.percent,
            upcoming.title if upcoming else stage.title,
            self._how() if upcoming else "No flag is touched: traffic stays where it is.",
            complete=upcoming is None,
            stage_id=stage.id,
            overrides=overrides,
            lines=self.move_lines if started else self.move_lines_for("advance"),
            running=started or self.move_running("advance"),
        )

    def action_stepback(self) -> None:
        actions = self.permissions
        if actions is None or actions.previous_stage is None:
            return
        before = actions.previous_stage
        percent = self.cstate.percent

        def screen(started: bool = False) -> StepBackScreen:
            return StepBackScreen(
                percent,
                before.percent,
                before.title,
                lines=self.move_lines if started else self.move_lines_for("stepback"),
                running=started or self.move_running("stepback"),
            )

        def answered(reason: str | None) -> None:
            if reason is not None:
                self.start_stepback(reason)
                self.push_screen(screen(started=True))

        self.push_screen(screen(), answered)

    def action_rollback(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, RollbackScreen):
                return  # already open (maybe under another dialog): don't stack a second

        def answered(yes: bool | str | None) -> None:
            if yes:
                self.start_rollback(how="instant" if yes == INSTANT else "auto")
                self.push_screen(self._rollback_screen(started=True))

        asking = self._rollback_screen()
        self.push_screen(asking, answered)
        if not asking.started:
            self.run_worker(
                partial(self._plan, asking), group="plan", exclusive=True, exit_on_error=False
            )
        # In the console's first seconds the HTTP stack waits for the first screen's answers
        # (tui/first_screen): a rollback does not. Its imports start now, on their thread,
        # while the operator reads the dialog (not on the loop after `y`); after the dialog
        # is up, and never in its way: what fails there is said, the dialog stays.
        try:
            self._start_the_rest()
        except Exception as exc:
            self.say(
                self.session.redact(
                    f"panels below the screen, the flag read and probes did not start ({exc}); "
                    "the rollback does not need them"
                ),
                "warning",
            )

    async def _plan(self, screen: RollbackScreen) -> None:
        """Ask the platform how a rollback would reach traffic, for the open dialog: `y`
        never waits for this (it decides again once the intent is journaled)."""
        plan_rollback = getattr(self.flag, "plan_rollback", None)
        if plan_rollback is None:
            return
        try:
            plan = await plan_rollback(0)
        except flags.FlagError:
            return  # the rollback itself says what is wrong
        screen.show_plan(plan.says(), reverts=bool(plan.reverts) and not plan.instant)

    def _rollback_screen(self, *, started: bool = False) -> RollbackScreen:
        actions = self.permissions
        landing = actions.rollback_stage.title if actions else self.runbook.stages[0].title
        fired = ", ".join(a.trigger_id for a in self.latched_critical())
        why = f"Critical trigger fired: {fired}" if fired else "No critical trigger has fired."
        unknown = ", ".join(a.trigger_id for _, a in self.banner_alarms() if not a.latched)
        if unknown:
            why += f"\nCritical trigger that cannot be evaluated: {unknown}"
        running = self.move_in_flight()
        if running and running != "rollback":
            why += f"\nThe {running} in flight will be stopped first."
        # Traffic as high as it may be: what the flag reads, what the journal says, and the
        # target of a move in flight (a rollback opened mid-advance once said "0 % → 0 %").
        readings = [self.cstate.percent]
        if self.flag_state and self.flag_state.percent is not None:
            readings.append(self.flag_state.percent)
        pending = self.cstate.pending
        if pending is not None and pending.move != "rollback":
            readings.append(pending.to_percent)
        percent = max(readings)
        return RollbackScreen(
            percent,
            landing,
            why,
            lines=self.move_lines if started else self.move_lines_for("rollback"),
            running=started or self.move_running("rollback"),
        )

    def _how(self) -> str:
        config = self.runbook.flag
        if config.kind == "vercel":
            redeploy = (
                "then a production redeploy, live when READY" if config.redeploy else "no redeploy"
            )
            return f"Sets {config.key} on Vercel project {config.project}, {redeploy}."
        if config.kind == "file":
            shown = config.path
            if shown is not None and shown.is_relative_to(self.runbook.folder):
                shown = shown.relative_to(self.runbook.folder)
            return f"Writes the flag file {shown}, then reads it back."
        return "Runs the runbook's flag set command, then reads the flag back."

    # -- starting moves ---------------------------------------------------------------------

    def start_advance(self, confirm: int) -> None:
        report = self.report
        now = self.clock()
        # advance judges the hold from the evidence file: the console's open runs go there
        # first, so it judges everything the console saw.
        try:
            self.evidence.flush()
        except OSError as exc:
            self.say(f"cannot record evidence before advancing: {exc}", "warning")
        # Copied here, on the console's loop: the move runs on a thread of its own.
        results = dict(self.results)
        self._start(
            "advance",
            lambda flag, progress: actions.advance(
                self.session,
                flag,
                report=report,
                confirm=confirm,
                progress=progress,
                now=now,
                # every panel's latest rows: the stage's exit snapshot, a later baseline
                results=results,
            ),
        )

    def start_stepback(self, reason: str) -> None:
        self._start(
            "stepback",
            lambda flag, progress: actions.stepback(
                self.session, flag, reason=reason, progress=progress
            ),
        )

    def start_rollback(self, how: str = "auto") -> None:
        running = self.move_in_flight()
        if running == "rollback":
            return
        if running:
            self.stop_move(running)  # safety first: the advance journals itself as interrupted
        fired = ", ".join(a.trigger_id for a in self.latched_critical())
        reason = "emergency rollback from the console" + (f" (fired: {fired})" if fired else "")
        self._start(
            "rollback",
            lambda flag, progress: actions.rollback(
                self.session, flag, reason=reason, progress=progress, how=how
            ),
        )

    def detached(self) -> None:
        """The terminal hung up (tui.hangup): what the move in flight says from now on goes
        to detached.log, as the CLI's does, and every webhook hears it is still retrying."""
        self.detached_log = self.runbook.journal_path.with_name("detached.log")
        move = self.move_in_flight()
        self._detached_say(
            move or "console",
            f"the console's terminal hung up; the {move_words(move)} in flight goes on detached"
            if move
            else "the console's terminal hung up",
        )

    def _detached_say(self, move: str, line: str) -> None:
        text = inert(self.session.redact(line), max_len=1000)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError, ValueError):
            assert self.detached_log is not None
            with self.detached_log.open("a", encoding="utf-8") as log:
                os.fchmod(log.fileno(), 0o600)
                log.write(f"{stamp}Z  {move}: {text}\n")
        if move == "rollback" and ("failed" in line or "goes on detached" in line):
            hooks, _ = notify.webhooks(self.runbook.notify, self.session.environ)
            if hooks:
                who = f"{self.session.journal.actor} on {self.session.journal.host}"
                said = self.session.redact(f"rollback by {who} is retrying detached: {line}")
                threading.Thread(
                    target=notify.tell_now, args=(hooks, said), name="cutover-tell", daemon=True
                ).start()

    def stop_move(self, move: str) -> None:
        if self.move_running(move) and self.move_worker is not None:
            self.move_worker.cancel()

    def _start(self, move: str, start: Start) -> None:
        self.move_name = move
        self.move_lines = [f"{move_words(move)} started"]
        if self.flag is None and self.flag_error is not None:
            self.post_message(
                ActionFinished(move, False, f"the flag cannot be opened: {self.flag_error}")
            )
            return

        def progress(line: str) -> None:
            self.post_message(ActionLine(move, line))
            if self.detached_log is not None:
                self._detached_say(move, line)

        # Started here, before anything is drawn: the move's first step (the journaled
        # intent) does not wait for the worker's turn on the console's loop.
        ended, stop = self._launch(move, start, progress)
        self.move_worker = self.run_worker(
            partial(self._run, ended, stop),
            name=move,
            group=f"move:{move}",
            exit_on_error=False,
        )
        self.show_live()

    def _launch(
        self, move: str, start: Start, progress: Callable[[str], None]
    ) -> tuple[concurrent.futures.Future[None], Callable[[], None]]:
        """Run the move on a thread of its own, on an event loop of its own, with a flag of
        its own: nothing the console draws or fetches meanwhile delays it (an emergency
        rollback's PATCH waited ~150 ms behind dialogs and panels on the console's loop).
        Returns when it has ended, and how to stop it."""
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._move(move, start, progress))
        ended: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                asyncio.set_event_loop(loop)
                loop.run_until_complete(task)
            except BaseException as exc:  # cancelled: the move has said so already
                ended.set_exception(exc)
            else:
                ended.set_result(None)
            finally:
                loop.close()
                _hand_over.end()

        def stop() -> None:
            if not ended.done():
                # The move may end (and close its loop) between the check and the call.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)

        _hand_over.begin()
        threading.Thread(target=run, name=f"cutover-{move}", daemon=True).start()
        return ended, stop

    async def _run(self, ended: concurrent.futures.Future[None], stop: Callable[[], None]) -> None:
        """The worker that stands for the move on the console's loop: it ends when the move
        has. Stopped (the operator, a rollback pre-empting an advance, the console exiting),
        it cancels the move on its thread and still waits until it has ended and said how."""
        waiting = asyncio.wrap_future(ended)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            stop()
            with contextlib.suppress(BaseException):
                await waiting
            raise

    async def _move(self, move: str, start: Start, progress: Callable[[str], None]) -> None:
        try:
            flag = self._flag_for_move()
        except flags.FlagError as exc:
            said = f"{move_words(move)} not started: the flag cannot be opened: {exc}"
            self.post_message(ActionFinished(move, False, said))
            return
        try:
            await self._moved(move, start, flag, progress)
        finally:
            if flag is not self.flag:
                with contextlib.suppress(Exception):
                    await flag.aclose()

    def _flag_for_move(self) -> flags.Flag:
        """The console's own flag is tied to its event loop (an HTTP client's connections
        are): a move gets a fresh one from the runbook, cheap to open."""
        if self._flag_given and self.flag is not None:
            return self.flag
        return flags.session_flag(self.session)

    async def _moved(
        self, move: str, start: Start, flag: flags.Flag, progress: Callable[[str], None]
    ) -> None:
        try:
            outcome = await start(flag, progress)
        except actions.Refused as exc:
            self.post_message(ActionFinished(move, False, str(exc)))
        except flags.FlagError as exc:
            self.post_message(ActionFinished(move, False, str(exc)))
        except asyncio.CancelledError:
            said = f"{move_words(move)} stopped by the operator"
            self.post_message(ActionFinished(move, False, said))
            raise
        except Exception as exc:  # a bug must reach the operator as words, not a traceback
            self.post_message(ActionFinished(move, False, unexpected_words(move, exc)))
        else:
            self.post_message(ActionFinished(move, outcome.ok, outcome.message))

    # -- their messages -------------------------------------------------------------------

    def _dialogs(self, move: str) -> list[MoveScreen]:
        return [s for s in self.screen_stack if isinstance(s, MoveScreen) and s.move == move]

    def on_action_line(self, message: ActionLine) -> None:
        if message.move == self.move_name:
            self.move_lines.append(message.line)
        for screen in self._dialogs(message.move):
            if screen.started:
                screen.add_line(message.line)

    def on_move_screen_stop(self, message: MoveScreen.Stop) -> None:
        self.stop_move(message.move)

    def on_action_finished(self, message: ActionFinished) -> None:
        for screen in self._dialogs(message.move):
            if screen.started:
                screen.finish(message.ok, message.summary)
        mark = "✓" if message.ok else "✗"
        self.say(f"{mark} {message.summary}", "information" if message.ok else "error")
        self.reload_state()
        self._quiet_seq = self.cstate.last_seq
        self.read_flag()


def unexpected_words(move: str, exc: Exception) -> str:
    """What a move that failed in cutover's own code says: that it is a bug, and where the
    operator goes next. Where traffic is, `cutover status` reads from the journal and the
    flag; a rollback can always be run again from a shell.

    >>> words = unexpected_words("rollback", KeyError("x"))
    >>> words.startswith("rollback failed: unexpected KeyError: 'x' (a bug in cutover: ")
    True
    >>> "`cutover rollback` rolls back from there" in words
    True
    >>> "cutover rollback" in unexpected_words("advance", ValueError("bad"))
    False
    """
    then = ", `cutover rollback` rolls back from there" if move == "rollback" else ""
    return (
        f"{move_words(move)} failed: unexpected {type(exc).__name__}: {exc} (a bug in cutover: "
        f"`cutover status` in a shell says where traffic is{then}; please report it)"
    )
