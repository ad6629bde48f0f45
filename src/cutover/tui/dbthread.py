"""The console's database client on a thread of its own, with its own event loop.

Why: a query is a few round trips (open the read-only transaction, the guard's catalog
check, prepare, fetch, commit), and on the console's loop each waits for a turn, which a
layout or a frame being drawn holds for 50-150 ms on a busy machine. Its first queries could
not even leave before Textual had built the first screen (that start does not yield). On a
thread of its own a round trip waits at most for the interpreter's switch interval (5 ms),
and the first screen's queries leave before Textual starts (start_early).

The console sees the same Runner (connect, run, aclose), awaited on its own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui.refresh import Runner

T = TypeVar("T")
# How long closing waits for the thread's pool to close (it bounds its own wait at 5 s).
CLOSE_WAIT_S = 7.0
# An early answer not taken within this long is not handed out: the query runs afresh.
EARLY_FOR_S = 10.0


class ThreadedRunner:
    """`runner`, run on a thread with its own loop; the thread starts at once."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cutover database", daemon=True
        )
        self._thread.start()
        # Queries sent before anyone asked (start_early): their arguments, when they were
        # sent and the answer to be.
        self._early: dict[str, tuple[tuple, float, concurrent.futures.Future]] = {}

    def _submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def start_early(self, queries: Iterable[tuple[Query, tuple]]) -> None:
        """Open the pool and send these queries now, from any thread, in this order: the
        console's first run of each (with the same arguments) takes its answer."""

        async def connect_then(query: Query, args: tuple) -> QueryResult:
            await self._runner.connect()
            return await self._runner.run(query, *args)

        for query, args in queries:
            sent = time.monotonic()
            self._early[query.id] = (args, sent, self._submit(connect_then(query, args)))

    async def connect(self) -> None:
        await asyncio.wrap_future(self._submit(self._runner.connect()))

    async def run(self, query: Query, *args: object) -> QueryResult:
        early = self._early.pop(query.id, None)
        if early is not None and early[0] == args and time.monotonic() - early[1] < EARLY_FOR_S:
            answer = early[2]
        else:
            if early is not None:
                early[2].cancel()
            answer = self._submit(self._runner.run(query, *args))
        return await asyncio.wrap_future(answer)

    async def aclose(self) -> None:
        for _args, _sent, answer in self._early.values():
            answer.cancel()
        self._early.clear()
        try:
            closing = self._submit(self._runner.aclose())
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(closing), CLOSE_WAIT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, CLOSE_WAIT_S)
            if not self._thread.is_alive():
                self._loop.close()
