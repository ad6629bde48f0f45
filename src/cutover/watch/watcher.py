"""`cutover watch`, the core: evaluate every query on its own interval, record each verdict
as evidence, take snapshots, run the stage's probes, follow the journal, and say each change
once (a line, a notification). It never changes the flag unless the stage arms it
(`auto_rollback`); then it rolls back through the one journaled path a person uses.

No UI, no signals and no clock of its own: the CLI (cli/watch.py) and the benchmark drive it,
the clock is injected, and `cycle()` does everything that is due at the clock's now."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cutover.base.errors import CutoverError
from cutover.base.inert import inert
from cutover.judge.alarms import Alarm, fold
from cutover.judge.check import CheckReport, TriggerReport, evaluations, queries_for
from cutover.judge.hold import Hold
from cutover.judge.session import Session, query_args
from cutover.record import snapshots
from cutover.record.evidence import GATE, TRIGGER, Run
from cutover.record.evidence_tail import EvidenceTail
from cutover.record.journal import current_actor
from cutover.record.state import CutoverState
from cutover.runbook.durations import humanize
from cutover.runbook.model import Stage
from cutover.sources.httpquery import run_query
from cutover.sources.notify import Notifier
from cutover.sources.probes import ProbeResult, run_probe
from cutover.sources.results import Cause, QueryResult
from cutover.traffic import actions
from cutover.traffic.flags import Flag, FlagError, FlagState
from cutover.watch.words import Said, describe_event, flag_words, news

MAX_LINE = 600  # a line (and a notification) never carries a whole error page
STOP_WAIT_S = 5.0  # how long stopping waits for queries, probes and flag reads in flight
ROLLBACK_PROGRESS_LINES = 8  # then every 10th: a rollback retrying for hours is not a flood


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


def _due(at: datetime | None, now: datetime, every_s: float) -> bool:
    """Due now: never planned, its time has come, or planned further ahead than one
    interval, which only a clock stepped back can do (then it would wait for the clock to
    catch up with a time planned by the old one, leaving a gap in the evidence)."""
    return at is None or at <= now or (at - now).total_seconds() > every_s


class Watcher:
    """One watcher over one session. `run(stop)` until stop is set, or `once()`; the
    benchmark calls `start()`, then `cycle(settle=True)` at each step of its clock."""

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
        self.store = session.evidence_store("watch")
        self.tail = EvidenceTail(session.evidence_path)
        self._digests = session.sql_digests()
        self._snap_dir = snapshots.snapshots_dir(self.book.journal_path)
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
        if self.flag is None:
            self.say(f"the flag cannot be opened: {self.flag_problem}; auto_rollback cannot act")
        elif current.pending is not None:
            # A crashed action (a watcher killed mid-rollback) is settled like any command
            # settles one on start; one still held by a live process is left to it.
            for line in await actions.reconcile_if_idle(self.session, self.flag):
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
            if self.results and snapshots.EXIT not in snapshots.taken(self._snap_dir, *old):
                self._snapshot(old[0], old[1], snapshots.EXIT, now)
        self._visit = visit
        self._entered = current.entered_at
        self._taken = snapshots.taken(self._snap_dir, *visit)
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

    # -- starting what is due ---------------------------------------------------------------

    def _start_due(self, now: datetime, current: CutoverState) -> None:
        for qid, query in self.book.queries.items():
            key = f"query:{qid}"
            if key in self._tasks or not _due(self._due.get(qid), now, query.refresh_s):
                continue  # a refresh never overlaps itself
            self._due[qid] = now + timedelta(seconds=query.refresh_s)
            # An http query asks an endpoint, not the database: an outage does not park it.
            if self.db_down_since is None or query.kind == "http":
                self._spawn(key, self._run_query(qid, now, current))
            else:  # not run: the evidence says so at the query's own pace
                self.results[qid] = QueryResult(
                    qid,
                    ran_at=now,
                    error=f"not run: the database is unreachable since "
                    f"{self.db_down_since:%H:%M:%S}Z; reconnecting",
                    cause=Cause.UNREACHABLE,
                    duration_s=0.0,
                )
                self._fresh.add(qid)
                self._not_run.add(qid)
        if (
            self.db_down_since is not None
            and "reconnect" not in self._tasks
            and self._reconnect_at is not None
            and _due(self._reconnect_at, now, max(self.pace.reconnect_s))
        ):
            self._spawn("reconnect", self._reconnect())
        flag_due = _due(self._flag_due, now, self.pace.flag_every_s)
        if self.flag is not None and "flag" not in self._tasks and flag_due:
            self._flag_due = now + timedelta(seconds=self.pace.flag_every_s)
            self._spawn("flag", self._read_flag())
        probes = self._stage_probes(current)
        if (
            probes
            and "probes" not in self._tasks
            and _due(self._probe_due, now, self.pace.probe_every_s)
        ):
            self._probe_due = now + timedelta(seconds=self.pace.probe_every_s)
            self._spawn("probes", self._run_probes(probes, now))

    async def _run_query(
        self, qid: str, launched: datetime, current: CutoverState | None = None
    ) -> QueryResult:
        query = self.book.queries[qid]
        result = await run_query(
            self.runner, query, *query_args(query, current), environ=self.session.environ
        )
        # Stamped by the watcher's clock, when it was asked for: the one time line.
        return replace(result, ran_at=launched)

    def _query_done(
        self, qid: str, result: QueryResult | None, error: BaseException | None, now: datetime
    ) -> None:
        if result is None:  # the runner never raises; if it did, the verdict waits
            result = QueryResult(qid, ran_at=now, error=f"unexpected {type(error).__name__}")
        self.results[qid] = result
        self._fresh.add(qid)
        self._not_run.discard(qid)
        assert result.ran_at is not None
        if self.book.queries[qid].kind == "http":
            return  # an endpoint's answer says nothing about the database
        if result.cause is Cause.UNREACHABLE:
            if self.db_down_since is None:
                self._db_down(result.ran_at, result.error or "unreachable", now)
        elif self.db_down_since is not None and result.ran_at >= self.db_down_since:
            self._db_up(now)  # it answered a query asked after the outage began

    def _db_down(self, since: datetime, reason: str, now: datetime) -> None:
        self.db_down_since = since
        self._reconnect_tries = 0
        # The first attempt at once: it closes the dead pool, whose own reconnecting would
        # otherwise go on behind the watcher's back.
        self._reconnect_at = now
        self.say(
            f"database outage: {reason}. Verdicts wait (gates WAIT, triggers unknown) and holds "
            "restart until it is back; reconnecting with backoff"
        )

    def _db_up(self, now: datetime) -> None:
        since = self.db_down_since
        assert since is not None
        self.db_down_since, self._reconnect_at = None, None
        self.say(
            f"database reachable again after {humanize((now - since).total_seconds())} "
            f"(unreachable since {since:%H:%M:%S}Z); evaluating every query now"
        )
        self._due = dict.fromkeys(self.book.queries, now)
        # The outage's not-run results are not what the database says now: nothing is
        # judged aloud until every query has answered again.
        for qid in self._not_run:
            self.results.pop(qid, None)
        self._not_run.clear()
        self._ready_from = now

    async def _reconnect(self) -> None:
        await self.runner.aclose()
        await self.runner.connect()  # DatabaseUnavailable while it is still down

    def _reconnected(self, error: BaseException | None, now: datetime) -> None:
        if self.db_down_since is None:
            return
        if error is None:
            self._db_up(now)
            return
        steps = self.pace.reconnect_s
        delay = steps[min(self._reconnect_tries, len(steps) - 1)]
        self._reconnect_tries += 1
        self._reconnect_at = now + timedelta(seconds=delay)

    # -- the flag and the probes ------------------------------------------------------------

    async def _read_flag(self) -> FlagState | FlagError:
        assert self.flag is not None
        try:
            return await self.flag.read()
        except FlagError as exc:
            return exc

    def _flag_read(self, got: FlagState | BaseException, now: datetime) -> None:
        if not isinstance(got, FlagState):
            problem = str(got) if isinstance(got, CutoverError) else type(got).__name__
            if self.flag_down_since is None:
                self.flag_down_since = now
                self.say(
                    f"the flag cannot be read: {problem}. Still watching; an armed "
                    "auto_rollback still tries (a rollback is never blocked)"
                )
            return
        if self.flag_down_since is not None:
            down = humanize((now - self.flag_down_since).total_seconds())
            self.flag_down_since = None
            self.say(f"the flag reads again after {down}: {flag_words(got)}")
        elif self.flag_state is None:
            self.say(f"flag reads {flag_words(got)}", notify=False)
        elif flag_words(got) != flag_words(self.flag_state):
            self.say(f"flag: {flag_words(self.flag_state)} → {flag_words(got)}")
        self.flag_state = got

    def _stage_probes(self, current: CutoverState) -> list[str]:
        stage = self.book.stage(current.stage_id)
        wanted = [s.probe for s in stage.steps if s.probe and s.probe in self.book.probes]
        return list(dict.fromkeys(wanted))

    async def _run_probes(self, probe_ids: list[str], now: datetime) -> dict[str, ProbeResult]:
        out = {}
        for pid in probe_ids:
            out[pid] = await run_probe(self.book.probes[pid], environ=self.session.environ, now=now)
        return out

    def _probed(self, results: dict[str, ProbeResult], error: BaseException | None) -> None:
        if error is not None:
            self._say_once("probes", f"probes could not run: {type(error).__name__}")
            return
        for pid, result in results.items():
            before = self._probes.get(pid)
            if before is None:
                self.say(f"probe {result.summary}", notify=False)
            elif before.status != result.status:
                self.say(f"probe {pid}: {before.status} → {result.summary}")
            self._probes[pid] = result

    # -- judging ----------------------------------------------------------------------------

    def _evaluate(self, now: datetime, current: CutoverState) -> None:
        stage = self.book.stage(current.stage_id)
        report = self.session.judge(stage, self.results, now, current, runs=self.tail.runs)
        fresh, self._fresh = self._fresh, set()
        self._record(report, fresh, now)
        self.tail.read()
        if self.tail.problem is None:
            self._said_once.discard("evidence read")
        else:
            self._say_once(
                "evidence read",
                f"the evidence cannot be read back ({self.tail.problem}): holds are judged "
                "on what was read before",
            )
        self._trim(current, now)
        hold = self.session.judge_hold(current, now, report, runs=self.tail.runs)
        self._alarms, _ = fold(self._alarms, report, now)
        self.report, self.hold = report, hold
        # Said only from results asked for since the database was last back: the outage's
        # not-run results still in hand at recovery are not news.
        ready = all(
            (r := self.results.get(q)) is not None and (r.ran_at or now) >= self._ready_from
            for q in queries_for(self.book, stage)
        )
        if ready and self.db_down_since is None:
            self._announce(stage, current, report, hold)
            self._snapshots(stage, current, now)
        self._auto_rollback(stage, current, report)

    def _record(self, report: CheckReport, fresh: set[str], now: datetime) -> None:
        if not fresh:
            return
        query_of = {(GATE, g.id): g.check.query for g in report.gates}
        query_of |= {(TRIGGER, t.id): t.check.query for t in report.triggers if t.check}
        items = [
            e
            for e in evaluations(report, self._digests, at=now)
            if query_of.get((e.what, e.name)) in fresh
        ]
        try:
            self.store.record(items)
        except OSError as exc:
            if not self._evidence_trouble:
                self._evidence_trouble = True
                self.say(
                    f"evidence cannot be written ({exc}): verdicts go unrecorded, so holds "
                    "cannot count them, until it can"
                )
            return
        if self._evidence_trouble:
            self._evidence_trouble = False
            self.say("evidence is recorded again")

    def _trim(self, current: CutoverState, now: datetime) -> None:
        """Keep what a judgement can still need: the triggers' runs over their longest `for`
        (with room for gaps), and the gates' runs of this stage visit from each gate's
        latest FAIL or WAIT on (a hold restarts there: nothing before it counts any more),
        so a visit of weeks keeps what its last restart left, not every run since entry."""
        entered = current.entered_at or now
        triggers_from = now - timedelta(seconds=self._trigger_window_s)
        restarted: dict[str, datetime] = {}
        for run in self.tail.runs:
            if run.what == GATE and run.stage == current.stage_id and run.verdict != "pass":
                restarted[run.name] = max(run.last, restarted.get(run.name, run.last))

        def keep(run: Run) -> bool:
            if run.what == TRIGGER:
                return run.last >= triggers_from
            if run.stage != current.stage_id:
                return run.last >= entered
            return run.last >= max(entered, restarted.get(run.name, entered))

        self.tail.trim(keep)

    def _announce(
        self, stage: Stage, current: CutoverState, report: CheckReport, hold: Hold
    ) -> None:
        self._said, lines = news(
            self._said,
            stage=stage,
            current=current,
            report=report,
            hold=hold,
            alarms=self._alarms,
        )
        for line in lines:
            self.say(line)

    # -- snapshots --------------------------------------------------------------------------

    def _snapshots(self, stage: Stage, current: CutoverState, now: datetime) -> None:
        """Entry when the visit is first seen, the latest checkpoint due (one missed while
        nobody watched is not invented afterwards), each once, from results asked for after
        it came due."""
        entered = current.entered_at
        if entered is None:
            return
        wanted = [(snapshots.ENTRY, entered)]
        due = snapshots.due_checkpoints(entered, now, stage.checkpoint_s)
        if due and stage.checkpoint_s:
            wanted.append((due[-1], entered + timedelta(seconds=len(due) * stage.checkpoint_s)))
        for label, due_at in wanted:
            if label in self._taken:
                continue
            fresh = all(
                (r := self.results.get(q)) is not None and (r.ran_at or due_at) >= due_at
                for q in self.book.queries
            )
            if not fresh:
                # Ask every query now rather than wait up to its interval.
                for q, r in self.results.items():
                    if r.ran_at is not None and r.ran_at < due_at:
                        self._due[q] = min(self._due.get(q, now), now)
                continue
            self._snapshot(current.stage_id, current.visit, label, now)

    def _snapshot(self, stage: str, visit: int, label: str, now: datetime) -> None:
        try:
            path = snapshots.take(self._snap_dir, stage, visit, label, self.results, now)
        except OSError as exc:
            self._say_once(f"snapshot {label}", f"snapshot {stage} {label} not written: {exc}")
            return
        if (stage, visit) == self._visit:
            self._taken.add(label)
        if path is not None:
            self.say(f"snapshot: {stage} {label} ({len(self.results)} queries)", notify=False)

    # -- auto_rollback ----------------------------------------------------------------------

    def _auto_rollback(self, stage: Stage, current: CutoverState, report: CheckReport) -> None:
        if not stage.auto_rollback or self.rolling_back:
            return
        armed = [
            t
            for t in report.triggers
            if t.id in stage.auto_rollback and t.check is not None and t.fired is True
        ]
        if not armed:
            return
        visit = (current.stage_id, current.visit)
        if stage.percent <= 0 or current.percent <= 0 or self._rolled_back == visit:
            return  # rolled back already: not again until traffic is above 0 again
        # Only a current reading may say there is nothing to roll back: while the flag cannot
        # be read, the last reading is history, and the rollback reads the flag itself.
        read = self.flag_state if self.flag_down_since is None else None
        if read is not None and read.percent == 0 and read.in_effect and read.settled:
            self._say_once(
                f"at zero {visit}",
                f"{armed[0].id} fired, but the flag already reads 0 % and it is live: "
                "nothing to roll back (the journal still says "
                f"{current.percent} %: `cutover reconcile` records it)",
            )
            return
        if self.flag is None:
            self._say_once(
                f"no flag {visit}",
                f"! {armed[0].id} FIRED and auto_rollback is armed, but the flag cannot be "
                f"opened ({self.flag_problem}): roll back by hand",
            )
            return
        self._rolled_back = visit
        self._spawn("rollback", self._roll_back(armed[0], stage, current))

    async def _roll_back(
        self, trigger: TriggerReport, stage: Stage, current: CutoverState
    ) -> actions.Outcome:
        assert self.flag is not None
        reason = f"auto_rollback: trigger {trigger.id} fired ({trigger.judgement.reason})"
        self.say(f"! ROLLING BACK {stage.id} ({current.percent} %) to 0 %: {reason}", urgent=True)
        self._rollback_lines = 0
        return await actions.rollback(
            self.session, self.flag, reason=reason, progress=self._rollback_progress
        )

    def _rollback_progress(self, line: str) -> None:
        self._rollback_lines += 1
        n = self._rollback_lines
        if n <= ROLLBACK_PROGRESS_LINES or n % 10 == 0:
            self.say(line, notify=False)

    def _rolled(self, got: actions.Outcome | BaseException) -> None:
        if isinstance(got, actions.Outcome):
            mark = "✓ rolled back" if got.ok else "✗ rollback failed"
            self.say(f"{mark}: {got.message}", urgent=True)
            self._flag_due = self.clock.now()  # read what traffic gets now
            return
        what = str(got) if isinstance(got, CutoverError) else type(got).__name__
        self.say(f"✗ rollback failed: {what}; roll back by hand", urgent=True)
