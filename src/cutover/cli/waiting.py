"""Long waits say what they wait for: while `check` or `validate` waits on a slow database,
stderr names each query still out and for how long, so an operator at a silent prompt knows
it is the database (and which query), not cutover, that is slow."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from cutover.runbook.durations import humanize

# Quiet for this long (a healthy check says nothing), then every EVERY_S.
SLOW_S = 2.0
EVERY_S = 5.0
CONNECTING = "the connection to the database"
GUARD = "the guard's look at every query (one round trip)"


class Waiting:
    """A query runner that keeps what is in flight: each query run, prepared or explained
    (by id) and the connection, with when it started. Everything else is the runner's."""

    def __init__(self, runner: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._clock = clock
        self.pending: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    @contextlib.contextmanager
    def _on(self, what: str) -> Iterator[None]:
        self.pending[what] = self._clock()
        try:
            yield
        finally:
            self.pending.pop(what, None)

    async def connect(self) -> None:
        with self._on(CONNECTING):
            await self._runner.connect()

    async def judge_all(self, queries: Any) -> None:
        with self._on(GUARD):
            await self._runner.judge_all(queries)

    async def run(self, query: Any, *args: object, **options: Any) -> Any:
        with self._on(query.id):
            return await self._runner.run(query, *args, **options)

    async def prepare(self, query: Any, *args: object) -> Any:
        with self._on(query.id):
            return await self._runner.prepare(query, *args)

    async def explain(self, query: Any, *args: object) -> Any:
        with self._on(query.id):
            return await self._runner.explain(query, *args)

    def words(self) -> str:
        """`waiting for success_rate (12s), errors (3s)`: the oldest first."""
        now = self._clock()
        out = [
            f"{what} ({humanize(max(1.0, now - since))})"
            for what, since in sorted(self.pending.items(), key=lambda kv: kv[1])
        ]
        return "waiting for " + ", ".join(out) if out else ""


def tell(
    waiting: Waiting,
    say: Callable[[str], None],
    after: float = SLOW_S,
    every: float = EVERY_S,
) -> asyncio.Task:
    """After `after` seconds, and every `every` seconds since, say what is still in flight
    (nothing when nothing is), until the task is cancelled."""

    async def telling() -> None:
        await asyncio.sleep(after)
        while True:
            words = waiting.words()
            if words:
                say(words)
            await asyncio.sleep(every)

    return asyncio.create_task(telling())


@contextlib.asynccontextmanager
async def telling(
    waiting: Waiting,
    say: Callable[[str], None],
    after: float = SLOW_S,
    every: float = EVERY_S,
) -> AsyncIterator[None]:
    """`tell` for the length of a block."""
    task = tell(waiting, say, after, every)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
