"""`cutover watch`, the core: each cycle follows the journal, asks what is due (readings),
judges it into evidence, says each change once, and rolls back where armed (judging)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cutover.base.inert import inert
from cutover.judge.alarms import Alarm
from cutover.judge.check import CheckReport
from cutover.judge.hold import Hold
from cutover.judge.session import Session
from cutover.record import snapshots
from cutover.record.evidence_tail import EvidenceTail
from cutover.record.identity import current_actor
from cutover.record.state import CutoverState
from cutover.sources.notify import Notifier
from cutover.sources.probes import ProbeResult
from cutover.sources.results import QueryResult
from cutover.traffic import settling
from cutover.traffic.flags import Flag, FlagState
from cutover.watch.judging import Judging
from cutover.watch.readings import Readings
from cutover.watch.words import Said, describe_event

MAX_LINE = 600  # a line (and a notification) never carries a whole error page
STOP_WAIT_S = 5.0  # how long stopping waits for queries, probes and flag reads in flight


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told: tests and the benchmark run a week in seconds."""

    def __init__(self, start: datetime | None = None):
        self.at = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


class Runner(Protocol):
    """What the watcher needs of a query runner (db.QueryRunner)."""

    async def run(self, query: Any) -> QueryResult: ...

    async def connect(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Pace:
    """How often the watcher does what the runbook does not time."""

    tick_s: float = 5.0  # follow the journal and judge at least this often
    flag_every_s: float = 60.0  # read the flag (what traffic gets) this often
    probe_every_s: float = 300.0  # run the stage's probes this often
    reconnect_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def watch_actor(environ: dict[str, str] | None = None) -> str:
    """Who the journal says acted when the watcher rolls back: the watcher, and who ran it."""
    return f"watch ({current_actor(environ or os.environ)})"


class Watcher(Readings, Judging):
    """One watcher over one session. `run(stop)` until stop is set, or `once()`; the
    benchmark calls `start()`, then `cycle(settle=True)` at each step of its clock.

    It never changes the flag unless the stage arms it (`auto_rollback`); then it rolls back
    through the one journaled path a person uses. No UI, no signals and no clock of its own:
    the CLI (cli/watch.py) and the benchmark drive it, the clock is injected, and `cycle()`
    does everything that is due at the clock's now."""

    def __init__(
        self,
        session: Session,
        *,
        runner: Runner,
        flag: Flag | None,
        flag_problem: str | None = None,
        out: Callable[[str], None] = lambda line: None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        pace: Pace = Pace(),
    ):
        self.session = session
        self.book = session.runbook
        self.runner = runner
        self.flag = flag
        self.flag_problem = flag_problem
        self.clock = clock or WallClock()
        self.pace = pace
        self._out = out
        self._notifier = notifier
        self._notify_all = True  # --once tells people only what it did (a rollback)
        self.stopped_by = ""  # what stopped it (a signal's name), for the last line
        self.store = session.evidence_store("watch", clock=self.clock.now)
        self.tail = EvidenceTail(session.store.evidence_feed(), session.journal.key)
        self._digests = session.sql_digests()
        self._trigger_window_s = max((t.for_s for t in self.book.triggers), default=0.0) + 2 * (
            self.store.break_s
        )
        # What is in hand: replaced, never accumulated.
        self.results: dict[str, QueryResult] = {}
        self._fresh: set[str] = set()  # results not yet judged into the evidence
        self._not_run: set[str] = set()  # results that say "not run: database unreachable"
        self._due: dict[str, datetime] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self.report: CheckReport | None = None
        self.hold: Hold | None = None
        self.current: CutoverState | None = None
        self._alarms: dict[str, Alarm] = {}
        # What has been said, so each change is said once (and an outage's side effects not).
        self._said = Said()
        self._visit: tuple[str, int] | None = None
        self._entered: datetime | None = None
        self._horizon: datetime | None = None  # the earliest stage entry the tail kept runs for
        self._taken: set[str] = set()
        self._seen_seq: int | None = None
        self._warnings: tuple[str, ...] = ()
        # Outages: since when, and when to try again.
        self.db_down_since: datetime | None = None
        self._reconnect_at: datetime | None = None
        self._reconnect_tries = 0
        self.flag_down_since: datetime | None = None
        self.flag_state: FlagState | None = None
        self._flag_due: datetime | None = None
        self._probe_due: datetime | None = None
        self._probes: dict[str, ProbeResult] = {}
        self._evidence_trouble = False
        self._rolled_back: tuple[str, int] | None = None  # the visit a rollback was started in
        self._said_once: set[str] = set()
        self._rollback_lines = 0
        self._ready_from = datetime.min.replace(tzinfo=UTC)

    # -- saying things ----------------------------------------------------------------------

    def say(self, text: str, *, notify: bool = True, urgent: bool = False) -> None:
        """One line to the log (timestamped, redacted, inert) and, for a change, to every
        webhook. Output trouble (a closed terminal) never stops the watcher."""
        text = inert(self.session.redact(text), max_len=MAX_LINE)
        line = f"{self.clock.now():%Y-%m-%d %H:%M:%S}Z  {text}"
        with contextlib.suppress(OSError, ValueError):
            self._out(line)
        if self._notifier is not None and notify and (self._notify_all or urgent):
            self._notifier.send(f"[{self.book.title}] {text}")

    def _say_once(self, key: str, text: str) -> None:
        if key not in self._said_once:
            self._said_once.add(key)
            self.say(text)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock.now()
        current = self._follow_journal(now)
        stage = self.book.stage(current.stage_id)
        armed = [
            f"{s.id} ({', '.join(s.auto_rollback)})" for s in self.book.stages if s.auto_rollback
        ]
        rollback = (
            "auto_rollback armed in " + "; ".join(armed)
            if armed
            else "it never changes the flag (no stage arms auto_rollback)"
        )
        self.say(
            f"watcher started as {self.session.journal.actor}: stage {stage.id} "
            f"({stage.percent} %, visit {current.visit}), {len(self.book.queries)} queries; "
            f"{rollback}"
        )
        if self.session.journal.key is None:
            self.say(
                "the journal is not keyed: its chain shows accidents, not a rewrite by whoever "
                "can write its files (set CUTOVER_JOURNAL_KEY to make it an HMAC)",
                notify=False,
            )
        if self.flag is None:
            self.say(f"the flag cannot be opened: {self.flag_problem}; auto_rollback cannot act")
        elif current.pending is not None:
            # A crashed action (a watcher killed mid-rollback) is settled like any command
            # settles one on start; one still held by a live process is left to it.
            for line in await settling.reconcile_if_idle(self.session, self.flag):
                self.say(line)

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle until `stop` is set; then stop (a rollback in flight finishes first)."""
        await self.start()
        try:
            while not stop.is_set():
                try:
                    await self.cycle()
                except Exception as exc:  # a bug must not end three weeks of watching
                    self._say_once(
                        f"bug {type(exc).__name__}",
                        f"unexpected {type(exc).__name__} in a cycle: {exc} (a bug in "
                        "cutover; the watcher goes on; report it)",
                    )
                await self._pause(stop)
        finally:
            await self.stop()

    async def once(self) -> None:
        """One full cycle: every query once, judged and recorded, probes and the flag read,
        an armed rollback done; then stop. For cron and for tests."""
        self._notify_all = False
        await self.start()
        try:
            await self.cycle(settle=True)
            task = self._tasks.get("rollback")
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
                self._reap(self.clock.now())
        finally:
            await self.stop()

    @property
    def rolling_back(self) -> bool:
        return "rollback" in self._tasks

    def abandon_rollback(self) -> None:
        """A second signal: stop the rollback in flight (its intent stays open; the next
        command settles it by what the flag reads)."""
        task = self._tasks.get("rollback")
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        self._reap(self.clock.now())  # what finished meanwhile is said, not dropped
        task = self._tasks.get("rollback")
        if task is not None and not task.done():
            self.say("stopping: the rollback in flight finishes first")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(task, return_exceptions=True)
            self._reap(self.clock.now())
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            # Bounded: an HTTP client may swallow a cancel mid-connect and finish its own
            # timeout first; stopping does not wait on that.
            await asyncio.wait(self._tasks.values(), timeout=STOP_WAIT_S)
        self._tasks.clear()
        try:
            self.store.flush()
        except OSError as exc:
            self.say(f"the last evidence could not be written: {exc}")
        why = f" ({self.stopped_by})" if self.stopped_by else ""
        self.say(f"watcher stopped{why}", notify=self._notify_all)

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until something is due, a task finished, or stop."""
        now = self.clock.now()
        wait = self.pace.tick_s
        for at in (*self._due.values(), self._flag_due, self._probe_due, self._reconnect_at):
            if at is not None:
                wait = min(wait, max(0.0, (at - now).total_seconds()))
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=max(0.05, wait), return_when="FIRST_COMPLETED")
        finally:
            for w in waiters:
                w.cancel()

    # -- one cycle --------------------------------------------------------------------------

    async def cycle(self, *, settle: bool = False) -> None:
        """Everything due now: follow the journal, take in finished work, start what is due,
        judge, record, say what changed, snapshot, and roll back if armed. With `settle`,
        wait for the work started to finish before judging (--once, the benchmark)."""
        self._wake.clear()
        now = self.clock.now()
        current = self._follow_journal(now)
        self._reap(now)
        self._start_due(now, current)
        if settle:
            pending = [t for k, t in self._tasks.items() if k != "rollback"]
            await asyncio.gather(*pending, return_exceptions=True)
            now = self.clock.now()
            self._reap(now)
        self._evaluate(now, current)

    def _spawn(self, key: str, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work, name=f"watch {key}")
        task.add_done_callback(lambda _t: self._wake.set())
        self._tasks[key] = task

    def _reap(self, now: datetime) -> None:
        for key, task in list(self._tasks.items()):
            if not task.done():
                continue
            del self._tasks[key]
            kind, _, name = key.partition(":")
            if task.cancelled():
                if kind == "rollback":  # a second signal stopped it
                    self.say(
                        "✗ the rollback was stopped before it was verified: its intent stays "
                        "in the journal, and the next command settles it by what the flag reads",
                        urgent=True,
                    )
                continue
            error = task.exception()
            if kind == "query":
                self._query_done(name, task.result() if error is None else None, error, now)
            elif kind == "reconnect":
                self._reconnected(error, now)
            elif kind == "flag":
                self._flag_read(task.result() if error is None else error, now)
            elif kind == "probes":
                self._probed(task.result() if error is None else {}, error)
            elif kind == "rollback":
                self._rolled(task.result() if error is None else error)

    # -- the journal ------------------------------------------------------------------------

    def _follow_journal(self, now: datetime) -> CutoverState:
        try:
            current, warnings = self.session.state()
            events = self.session.journal.tail_since(self._seen_seq or 0)
        except OSError as exc:  # the journal's disk or folder went away: keep what we had
            self._say_once("journal", f"the journal cannot be read: {exc}; still watching")
            if self.current is None:
                raise
            return self.current
        self._said_once.discard("journal")
        for warning in warnings:
            if warning not in self._warnings:
                self.say(f"journal: {warning}")
        self._warnings = warnings
        me = (self.session.journal.actor, self.session.journal.host)
        if self._seen_seq is not None:  # history before the watcher started is not news
            for event in events:
                if (event.actor, event.host) != me:  # its own actions are said as they happen
                    self.say(describe_event(event))
        self._seen_seq = max([current.last_seq, *(e.seq for e in events)])
        visit = (current.stage_id, current.visit)
        if visit != self._visit:
            self._enter(visit, current, now)
        self.current = current
        return current

    def _enter(self, visit: tuple[str, int], current: CutoverState, now: datetime) -> None:
        """A stage visit seen for the first time: the last one's exit snapshot (if nobody
        took it), fresh memory for its gates and hold, and every query run now."""
        old = self._visit
        if old is not None:
            before, after = self.book.stage(old[0]), self.book.stage(visit[0])
            self.say(
                f"stage {before.id} ({before.percent} %) → {after.id} ({after.percent} %), "
                f"visit {visit[1]}"
            )
            if self.results and snapshots.EXIT not in self.session.store.snapshot_labels(*old):
                self._snapshot(old[0], old[1], snapshots.EXIT, now)
        self._visit = visit
        self._entered = current.entered_at
        self._taken = self.session.store.snapshot_labels(*visit)
        self._said = self._said.new_visit()
        if self._entered is not None and self._horizon_moved_back():
            self.tail.restart()
        self._due = dict.fromkeys(self.book.queries, now)
        self._flag_due = self._probe_due = now

    def _horizon_moved_back(self) -> bool:
        """A journal started over (or replaced) can put the stage's entry before what the
        evidence follower already dropped: then it reads the evidence again."""
        horizon = self._entered
        moved = self._horizon is not None and horizon is not None and horizon < self._horizon
        self._horizon = horizon
        return moved
