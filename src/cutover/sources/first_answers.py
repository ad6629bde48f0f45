"""The console's first answers, asked before the console is built.

Importing the UI toolkit and building the first screen take about half a second, and on a
big table the first screen's queries take as long again on Postgres. Asked only once the
screen is up, the two add up; asked from a thread as soon as the runbook is loaded, the
database works while the screen is built, and the panels are drawn with their rows.

The thread has an event loop and a query runner of its own (a connection belongs to the
loop that opened it). The console takes each answer once, for its first fetch of that
query; what it does not take is cancelled. It opens its own connections only once these
are closed, so the two never hold more than one runner's pool (the read-only role's
connection limit counts them all).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

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
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._asking: asyncio.Task | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._dropped: set[str] = set()
        # The guard's verdicts on the queries' texts (sqlguard), for the console's own runner
        # to take over once `closed` is set: it need not ask the catalog again.
        self.judged: dict[str, object] = {}
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
            self._loop = loop
            self._asking = loop.create_task(self._ask())
            loop.run_until_complete(self._asking)
        except asyncio.CancelledError:  # close(): the console is leaving
            pass
        except Exception as exc:  # a bug: each answer says it, as the console's own runs would
            self._resolve_all(exc)
        finally:
            self._resolve_all(DatabaseUnavailable(STOPPED))
            self._loop = None
            loop.close()
            _settle(self.closed, None)

    async def _ask(self) -> None:
        if self._stopping.is_set():
            return
        runner = self.runner_factory()
        try:
            try:
                await runner.connect()
            except DatabaseUnavailable as exc:
                self._resolve_all(exc)
                return
            await runner.judge_all(self.queries)
            for query in self.queries:
                if query.id not in self._dropped:
                    self._tasks[query.id] = asyncio.create_task(self._one(runner, query))
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        finally:
            judged = getattr(runner, "judged", None)  # sources.db.QueryRunner's
            if isinstance(judged, dict):
                self.judged = dict(judged)
            await runner.aclose()

    async def _one(self, runner: Runner, query: Query) -> None:
        answer = self._all[query.id]
        try:
            result = await runner.run(query)
        except Exception as exc:  # a bug in the run: the console says it, as for its own
            _settle(answer, exception=exc)
        else:
            _settle(answer, result)

    def _resolve_all(self, exc: BaseException) -> None:
        for answer in self._all.values():
            _settle(answer, exception=exc)


STOPPED = "the console's first answers were stopped"


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
    shown = [query.id for query in panels_that_fit(session.runbook, terminal_lines())]
    # Only what the first screen shows: the answers below it would be taken in before the
    # first frame is drawn (and on one machine, the database's work competes with the
    # console's own start for its cores).
    asked = [session.runbook.queries[q] for q in asked_first(session.runbook, shown, rest=False)]
    first = FirstAnswers(session.runner, asked)
    return first.start() if first.queries else None


def terminal_lines() -> int:
    """The terminal's height as the console will find it (the terminal on stdout), else 24:
    only which queries go first depends on it."""
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).lines  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 24
