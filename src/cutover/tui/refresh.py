"""Each query on its own clock: a one-shot timer re-armed only when its fetch has finished,
so a refresh never overlaps itself; a database outage parks them all behind one reconnect
loop with backoff instead of every panel hammering a dead server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from textual.app import App
from textual.timer import Timer

from cutover.runbook.model import Query
from cutover.sources import db
from cutover.sources.first_answers import FirstAnswers
from cutover.sources.httpclient import Clients
from cutover.sources.httpquery import run_http
from cutover.sources.results import Cause, QueryResult
from cutover.tui.messages import DatabaseStatus, QueryFinished
from cutover.tui.text import next_interval

BACKOFF_S = (1, 2, 4, 8, 15, 30)


class Runner(Protocol):
    async def connect(self) -> None: ...

    async def run(self, query: Query, *args: object) -> QueryResult: ...

    async def aclose(self) -> None: ...


def unreachable(result: QueryResult) -> bool:
    """The server is gone, not this query wrong."""
    return result.cause is Cause.UNREACHABLE


class Refresher:
    def __init__(
        self,
        app: App,
        queries: dict[str, Query],
        runner_factory: Callable[[], Runner],
        clock: Callable[[], datetime],
        environ: Mapping[str, str] | None = None,
        args_for: Callable[[Query], tuple] | None = None,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.environ = environ if environ is not None else os.environ  # for http queries
        # What a query's `params` bind ($1 = the latest rollback's time…), asked per fetch.
        self.args_for = args_for or (lambda query: ())
        # Whether a query's refresh that came due is worth running now (tui/readings).
        self.wanted = wanted or (lambda query_id: True)
        self.queries = queries
        self.runner_factory = runner_factory
        self.clock = clock
        self.intervals: dict[str, float] = {q: queries[q].refresh_s for q in queries}
        self.paused = False
        self.runner: Runner | None = None
        # The first fetches' answers, asked before the console was built (cli/main.cmd_tui): taken
        # by the fetches on_mount starts, then dropped. None: every fetch runs here.
        self.first: FirstAnswers | None = None
        self._adopted = False  # their guard's verdicts, by our runner
        # Set once the console's first frame is drawn (app.on_mount): the first answers are
        # taken in after it, not before (ready at mount, they held the first frame back).
        self.first_frame = asyncio.Event()
        self.db_up: bool | None = None  # None: not known yet
        self.db_detail = "connecting"
        self.reconnect_attempt = 0
        self.next_reconnect_at: datetime | None = None
        self._timers: dict[str, Timer] = {}
        self._inflight: dict[str, float] = {}  # query id → when its fetch started
        self._fetches: dict[str, asyncio.Task] = {}
        # Queries whose refresh came due while nothing read them and nobody could see them
        # (`wanted`): run again once something does (unpark_wanted).
        self.parked: set[str] = set()
        # http queries share one client per destination for as long as the console runs
        self.http = Clients()

    # -- scheduling ----------------------------------------------------------------------

    def start(self) -> None:
        for query_id in self.queries:
            self.fetch(query_id)

    def refresh_now(self) -> None:
        if self.db_up is False:
            # The operator saying "now" beats the backoff: try to reconnect at once.
            self._start_reconnect(at_once=True)
            return
        for query_id in self.queries:
            self.fetch(query_id, force=True)

    def pause(self, paused: bool) -> None:
        self.paused = paused
        if paused:
            for timer in self._timers.values():
                timer.stop()
            self._timers.clear()
        else:
            self.start()

    def change_interval(self, query_ids: list[str], direction: int) -> float:
        for query_id in query_ids:
            self.intervals[query_id] = next_interval(self.intervals[query_id], direction)
            if query_id in self._timers:
                self._arm(query_id)
        return self.intervals[query_ids[0]]

    def running_for(self, query_id: str) -> float:
        """Seconds the query's fetch has been running (0 when none is)."""
        started = self._inflight.get(query_id)
        return 0.0 if started is None else time.monotonic() - started

    def fetch(self, query_id: str, *, force: bool = False) -> None:
        """Start one fetch, unless paused (and not forced), already running, parked behind
        the reconnect loop, or (not forced) wanted by nothing and nobody right now."""
        if query_id in self._inflight or (self.paused and not force) or self.db_up is False:
            return
        if self.queries[query_id].kind == "derived":
            return  # computed from the answers of what it reads, as they arrive (app.py)
        if not force and not self.wanted(query_id):
            # Nothing judges it and its panel is out of view: neither the database nor the
            # console's loop works for rows nobody will see. It runs when it comes back.
            self.parked.add(query_id)
            timer = self._timers.pop(query_id, None)
            if timer is not None:
                timer.stop()
            return
        self.parked.discard(query_id)
        timer = self._timers.pop(query_id, None)
        if timer is not None:
            timer.stop()
        self._inflight[query_id] = time.monotonic()
        asked = self.first.take(query_id) if self.first is not None else None
        # A plain task, not a Textual worker: a worker per fetch (its task, its context and
        # its events refer back to it) left about twenty objects of cyclic garbage per query
        # per refresh for the collector's full passes to find; a task that has ended is
        # freed by reference counting the moment it is let go of.
        task = asyncio.get_running_loop().create_task(
            self._fetch(query_id, asked), name=f"refresh {query_id}"
        )
        self._fetches[query_id] = task
        task.add_done_callback(partial(self._fetched, query_id))

    def _fetched(self, query_id: str, task: asyncio.Task) -> None:
        if self._fetches.get(query_id) is task:
            del self._fetches[query_id]
        if task.cancelled():
            self._inflight.pop(query_id, None)
            return
        error = task.exception()
        if error is not None:  # a bug: its verdicts are UNKNOWN at once, and it runs again
            redact = getattr(getattr(self.app, "session", None), "redact", str)
            said = redact(f"cutover could not run it ({type(error).__name__}: {error})")
            failed = QueryResult(query_id, ran_at=self.clock(), error=said)
            self.app.post_message(QueryFinished(failed))  # re-armed when taken in

    def unpark_wanted(self) -> None:
        """Run what was parked and is wanted now: its panel came into view, or the stage
        changed and a gate or trigger of the new one reads it. Asked every second."""
        for query_id in [q for q in self.parked if self.wanted(q)]:
            self.parked.discard(query_id)
            self.fetch(query_id)

    def finished(self, query_id: str) -> None:
        """Called by the app when the result message arrived: re-arm this query's timer."""
        self._inflight.pop(query_id, None)
        if not self.paused and self.db_up is not False:
            self._arm(query_id)

    def _arm(self, query_id: str) -> None:
        timer = self._timers.pop(query_id, None)
        if timer is not None:
            timer.stop()
        self._timers[query_id] = self.app.set_timer(
            self.intervals[query_id], partial(self.fetch, query_id), name=f"tick {query_id}"
        )

    # -- the work ------------------------------------------------------------------------

    def first_fetches_started(self) -> None:
        """The console's first fetches have taken their answers: what was asked for them and
        not taken (its panel no longer wanted) is cancelled, and no later fetch takes an
        answer asked back then."""
        if self.first is not None:
            self.first.drop_the_rest()

    async def _fetch(
        self, query_id: str, asked: concurrent.futures.Future[QueryResult] | None = None
    ) -> None:
        query = self.queries[query_id]
        if query.kind == "http":  # an endpoint, not the database: no say in "DB ✓/✗"
            try:
                result = await run_http(query, environ=self.environ, clients=self.http)
            except asyncio.CancelledError:
                self._inflight.pop(query_id, None)
                raise
            self.app.post_message(QueryFinished(result))
            return
        try:
            first = self.first
            if asked is None and first is not None and not first.closed.done():
                # While the first answers' connections are open, on them (one pool at a time).
                asked = first.ask(query, self.args_for(query))
            if asked is not None:
                result = await asyncio.wrap_future(asked)
                await self.first_frame.wait()
            else:
                runner = await self._connected()
                result = await runner.run(query, *self.args_for(query))
        except db.DatabaseUnavailable as exc:
            result = QueryResult(
                query_id, ran_at=self.clock(), error=str(exc), cause=Cause.UNREACHABLE
            )
            self.app.post_message(DatabaseStatus(False, str(exc)))
        except asyncio.CancelledError:
            # A cancelled fetch must still free its slot, or the query never runs again.
            self._inflight.pop(query_id, None)
            raise
        else:
            if unreachable(result):
                self.app.post_message(DatabaseStatus(False, result.error or ""))
            elif self.db_up is not True:
                self.app.post_message(DatabaseStatus(True, "connected"))
        self.app.post_message(QueryFinished(result))

    async def connect_early(self) -> None:
        """Open the database's connections while the console builds its screen, so the
        first fetches find them ready, and have the guard judge every query in one round
        trip (a first run waits for it, instead of asking on its own connection: one
        round trip each, two connections for nine queries). A failure is said by those
        fetches, not here."""
        with contextlib.suppress(db.DatabaseUnavailable):
            runner = await self._connected()
            judge_all = getattr(runner, "judge_all", None)
            if judge_all is not None:
                await judge_all(self.queries.values())

    def _runner(self) -> Runner:
        if self.runner is None:
            self.runner = self.runner_factory()
        return self.runner

    async def _connected(self) -> Runner:
        """The runner, connected. Not before the first answers' connections are closed: the
        two pools at once would hold twice the connections the read-only role's limit counts
        on. Their guard's verdicts come along (one catalog round trip saved)."""
        first = self.first
        if first is not None and not first.closed.done():
            # Shielded: a fetch cancelled while waiting must not cancel the others' wait.
            await asyncio.shield(asyncio.wrap_future(first.closed))
        runner = self._runner()
        if first is not None and not self._adopted:
            self._adopted = True
            known = getattr(runner, "judged", None)  # sources.db.QueryRunner's
            if isinstance(known, dict):
                for text, verdict in first.judged.items():
                    known.setdefault(text, verdict)
        await runner.connect()
        return runner

    # -- outage and reconnect ------------------------------------------------------------

    def went_down(self, detail: str) -> bool:
        """Park the queries and start the reconnect loop; True when this is news."""
        self.db_detail = detail
        if self.db_up is False:
            return False
        self.db_up = False
        for timer in self._timers.values():
            timer.stop()
        self._timers.clear()
        self._start_reconnect(at_once=False)
        return True

    def _start_reconnect(self, *, at_once: bool) -> None:
        self.reconnect_attempt = 0
        self.app.run_worker(
            partial(self._reconnect, at_once),
            name="reconnect",
            group="reconnect",
            exclusive=True,  # replaces a loop already waiting out its backoff
            exit_on_error=False,
        )

    def came_up(self) -> bool:
        news = self.db_up is not True
        # After an outage every query was parked behind the reconnect loop: all run again.
        # The first connection is news for the header only: the console started its queries
        # already, the first screen's first (tui/first_screen), and starting the rest at the
        # first answer put them (and the HTTP stack's imports) among the first screen's.
        after_outage = self.db_up is False
        self.db_up = True
        self.db_detail = "connected"
        self.next_reconnect_at = None
        if after_outage:
            self.start()
        return news

    async def _reconnect(self, at_once: bool = False) -> None:
        while True:
            wait = 0 if at_once else BACKOFF_S[min(self.reconnect_attempt, len(BACKOFF_S) - 1)]
            at_once = False
            self.reconnect_attempt += 1
            self.next_reconnect_at = self.clock() + timedelta(seconds=wait)
            await asyncio.sleep(wait)
            try:
                await self._connected()
            except db.DatabaseUnavailable as exc:
                self.db_detail = str(exc)
                continue
            self.app.post_message(DatabaseStatus(True, "reconnected"))
            return

    async def aclose(self) -> None:
        for task in list(self._fetches.values()):
            task.cancel()
        await self.http.aclose()
        if self.runner is not None:
            await self.runner.aclose()
