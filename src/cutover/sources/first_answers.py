"""The console's first answers, asked before the console is built.

Importing the UI toolkit and building the first screen take about half a second, and on a
big table the first screen's queries take as long again on Postgres. Asked only once the
screen is up, the two add up; asked from a thread as soon as the runbook is loaded, the
database works while the screen is built, and the panels are drawn with their rows.

The thread has an event loop and a query runner of its own (a connection belongs to the
loop that opened it). The console takes each answer once, for its first fetch of that
query; what it does not take is cancelled. Until those have all answered, the console's
other fetches run on these connections too (`ask`): a slow query on the first screen holds
back no other. Then these close, and the console opens its own: the two pools are never
open at once (the read-only role's connection limit counts them all).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from cutover.base.terminal import terminal_size
from cutover.runbook.model import Query, Runbook
from cutover.sources.db import DatabaseUnavailable
from cutover.sources.results import QueryResult

# The fewest lines a panel takes: its border, a help line, a table header and one row.
SMALLEST_PANEL = 5
# The fewest lines the console's live lines take: the header (3), the gates and advance
# lines (2) and the keys (1).
LIVE_LINES = 6
# How long the console's exit waits for the thread to close its connections.
CLOSE_WAIT_S = 2.0


def panels_that_fit(runbook: Runbook, height: int) -> list[Query]:
    """The panels that can be on a screen this tall at start: the height left by the live
    lines over the smallest panel, and one more, cut by the screen's edge."""
    fits = max(2, (height - LIVE_LINES) // SMALLEST_PANEL + 1)
    return list(runbook.queries.values())[:fits]


def asked_first(runbook: Runbook, shown: Iterable[str], *, rest: bool = True) -> list[str]:
    """What the console fetches at once: the first screen's panels (and what a derived one
    among them is computed from), then (with `rest`) every SQL query."""
    queries = runbook.queries
    wanted: list[str] = []

    def add(query_id: str) -> None:
        if query_id in queries and query_id not in wanted:
            wanted.append(query_id)
            for source in queries[query_id].derived_from:
                add(source)

    for query_id in shown:
        add(query_id)
    for query_id, query in queries.items():
        if rest and query.kind == "sql":
            add(query_id)
    return wanted


class Runner(Protocol):
    """What this needs of a query runner (sources.db.QueryRunner)."""

    async def connect(self) -> None: ...

    async def judge_all(self, queries: Iterable[Query]) -> None: ...

    async def run(self, query: Query, *args: object) -> QueryResult: ...

    async def aclose(self) -> None: ...


class FirstAnswers:
    """The answers to `queries` (SQL without parameters: those need the journal's state,
    which the console reads itself), asked on a thread of their own from `start` on."""

    def __init__(self, runner_factory: Callable[[], Runner], queries: Iterable[Query]) -> None:
        self.runner_factory = runner_factory
        self.queries = [q for q in queries if q.kind == "sql" and not q.params]
        self._all: dict[str, concurrent.futures.Future[QueryResult]] = {
            q.id: concurrent.futures.Future() for q in self.queries
        }
        self._offered = dict(self._all)  # not taken or dropped yet
        # Set once the thread's connections are closed: the console connects after it.
        self.closed: concurrent.futures.Future[None] = concurrent.futures.Future()
        # The guard's verdicts on the queries' texts (sqlguard), for the console's own runner
        # to take over once `closed` is set: it need not ask the catalog again.
        self.judged: dict[str, object] = {}
        self._stopping = threading.Event()
        # The console's other fetches run here until the first answers are in (`ask`).
        # `_loop`, `_accepting`, `_scheduled` and `_late_answers` are shared by both threads:
        # read and changed under `_lock`.
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = True
        self._scheduled = 0  # asked, their task not created yet
        self._late_answers: list[concurrent.futures.Future[QueryResult]] = []
        # On the thread only:
        self._asking: asyncio.Task | None = None
        self._connected: asyncio.Future[Runner] | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._late: set[asyncio.Task] = set()
        self._dropped: set[str] = set()
        self._closing = False
        self._thread = threading.Thread(target=self._main, name="cutover-first-answers")
        # Never keeps the process alive: a database that stops answering must not hold the
        # console's exit (the connections' sockets close with the process).
        self._thread.daemon = True

    def start(self) -> FirstAnswers:
        self._thread.start()
        return self

    def take(self, query_id: str) -> concurrent.futures.Future[QueryResult] | None:
        """The answer for this query's first fetch: it resolves to the QueryResult, or
        raises DatabaseUnavailable when the database could not be reached. None when it was
        not asked here, or was taken or dropped already: that fetch runs on the console's own
        connections (an answer is never handed out twice, nor after drop_the_rest)."""
        return self._offered.pop(query_id, None)

    def ask(
        self, query: Query, args: tuple[object, ...] = ()
    ) -> concurrent.futures.Future[QueryResult] | None:
        """Run another of the console's queries on these connections, while they are open
        (the console opens its own once these have closed): it resolves as take()'s do.
        None once they take no more: run it on the console's own."""
        with self._lock:
            loop = self._loop
            if not self._accepting or loop is None or self._stopping.is_set():
                return None
            answer: concurrent.futures.Future[QueryResult] = concurrent.futures.Future()
            try:
                loop.call_soon_threadsafe(self._start_late, query, args, answer)
            except RuntimeError:  # the loop has closed
                return None
            self._scheduled += 1
            self._late_answers.append(answer)
        return answer

    def drop_the_rest(self) -> None:
        """Cancel what was asked and not taken: nothing will read it."""
        left = list(self._offered)
        self._offered.clear()
        if left:
            self._in_thread(lambda: self._drop(left))

    def close(self) -> None:
        """Stop everything still running and wait a little for the connections to close."""
        self._offered.clear()
        self._stopping.set()
        self._in_thread(self._stop)
        if self._thread.is_alive():
            self._thread.join(CLOSE_WAIT_S)

    # -- on the thread -------------------------------------------------------------------

    def _in_thread(self, callback: Callable[[], None]) -> None:
        with self._lock:
            loop = self._loop
        if loop is None:
            return  # not started yet (it sees _stopping) or ended
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing runs there now
            loop.call_soon_threadsafe(callback)

    def _drop(self, query_ids: list[str]) -> None:
        self._dropped.update(query_ids)
        for query_id in query_ids:
            task = self._tasks.get(query_id)
            if task is not None:
                task.cancel()

    def _stop(self) -> None:
        if self._asking is not None:
            self._asking.cancel()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            # Before the loop is shared: a late query queued at once waits on it.
            self._connected = loop.create_future()
            with self._lock:
                self._loop = loop
            self._asking = loop.create_task(self._ask())
            loop.run_until_complete(self._asking)
        except asyncio.CancelledError:  # close(): the console is leaving
            pass
        except Exception as exc:  # a bug: each answer says it, as the console's own runs would
            self._resolve_all(exc)
        finally:
            with self._lock:
                self._accepting = False
                self._loop = None
                late = list(self._late_answers)
            # What never ran (the loop stopped first) is resolved, never left hanging: a fetch
            # waiting on it would never run again.
            self._resolve_all(DatabaseUnavailable(STOPPED), late)
            loop.close()
            _settle(self.closed, None)

    async def _ask(self) -> None:
        assert self._connected is not None
        connected = self._connected
        runner: Runner | None = None
        try:
            if self._stopping.is_set():
                raise DatabaseUnavailable(STOPPED)
            runner = self.runner_factory()
            try:
                await runner.connect()
            except DatabaseUnavailable as exc:
                self._resolve_all(exc)
                raise
            connected.set_result(runner)
            await runner.judge_all(self.queries)
            for query in self.queries:
                if query.id not in self._dropped:
                    answer = self._all[query.id]
                    self._tasks[query.id] = asyncio.create_task(self._one(query, answer))
            await self._drain()
        except DatabaseUnavailable as exc:
            with self._lock:
                self._accepting = False  # the console's own connections run the rest
            _fail(connected, exc)
        finally:
            self._closing = True
            _fail(connected, DatabaseUnavailable(STOPPED))  # cancelled (close) before it connected
            everything = [*self._tasks.values(), *self._late]
            for task in everything:
                task.cancel()  # a running query is cancelled on the server too
            await asyncio.gather(*everything, return_exceptions=True)
            if runner is not None:
                judged = getattr(runner, "judged", None)  # sources.db.QueryRunner's
                if isinstance(judged, dict):
                    self.judged = dict(judged)
                await runner.aclose()

    def _start_late(
        self, query: Query, args: tuple[object, ...], answer: concurrent.futures.Future
    ) -> None:
        with self._lock:
            self._scheduled -= 1
        if self._closing:  # asked as close() began: its task would outlive the loop
            _settle(answer, exception=DatabaseUnavailable(STOPPED))
            return
        task = asyncio.get_running_loop().create_task(self._one(query, answer, args))
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _drain(self) -> None:
        """Wait for every query asked here, the console's late ones too; then take no more."""
        while True:
            pending = [t for t in [*self._tasks.values(), *self._late] if not t.done()]
            if pending:
                await asyncio.wait(pending)
                continue
            with self._lock:
                if self._scheduled == 0:
                    self._accepting = False
                    return
            await asyncio.sleep(0)  # a late one's task is about to be created

    async def _one(
        self, query: Query, answer: concurrent.futures.Future, args: tuple[object, ...] = ()
    ) -> None:
        assert self._connected is not None
        try:
            runner = await asyncio.shield(self._connected)
            result = await runner.run(query, *args)
        except asyncio.CancelledError:
            _settle(answer, exception=DatabaseUnavailable(STOPPED))
            raise
        except Exception as exc:  # unreachable, or a bug: the console says it, as its own
            _settle(answer, exception=exc)
        else:
            _settle(answer, result)

    def _resolve_all(
        self, exc: BaseException, more: Iterable[concurrent.futures.Future] = ()
    ) -> None:
        for answer in [*self._all.values(), *more]:
            _settle(answer, exception=exc)


STOPPED = "the console's first answers were stopped"


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    """Fail a loop's future unless it is done, its exception taken as read: nothing need
    wait on it, and an exception never read is logged, onto the console's terminal."""
    if not future.done():
        future.set_exception(exc)
        future.exception()


def _settle(
    future: concurrent.futures.Future, result: object = None, exception: BaseException | None = None
) -> None:
    """Resolve a future unless it already is (or its taker cancelled it)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)


class Session(Protocol):
    """What this needs of the console's session (judge.session.Session)."""

    runbook: Runbook
    environ: Mapping[str, str]

    def runner(self) -> Runner: ...


def ask_for_console(session: Session) -> FirstAnswers | None:
    """The first SQL answers of a console opening in this terminal, asked from now on (call
    it before importing the UI toolkit, and close it when the console has ended); None
    without a DSN (the console says that itself) or without SQL to ask."""
    if not session.environ.get(session.runbook.database.dsn_env, "").strip():
        return None
    shown = [query.id for query in panels_that_fit(session.runbook, terminal_size()[1])]
    # Only what the first screen shows: the answers below it would be taken in before the
    # first frame is drawn (and on one machine, the database's work competes with the
    # console's own start for its cores).
    asked = [session.runbook.queries[q] for q in asked_first(session.runbook, shown, rest=False)]
    first = FirstAnswers(session.runner, asked)
    return first.start() if first.queries else None
