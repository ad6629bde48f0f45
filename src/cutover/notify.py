"""Telling people: each `[[notify]]` webhook gets `{"text": …}` (Slack-compatible) for every
trigger fired, cleared or raised, gate flip, hold met or restarted, action by anyone, and
the watcher's start, stop and outages. Sent in the background with retries and backoff, so
it never blocks an evaluation or a rollback; the URL is a secret and is never shown: a
webhook is named by the variable that holds it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from cutover.model import Notify

BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
MAX_QUEUE = 500  # messages waiting per webhook; beyond this the oldest are dropped (and said)


@dataclass(frozen=True)
class Webhook:
    name: str  # the variable holding the URL: how the webhook is named on screen
    url: str


def webhooks(
    notify: Sequence[Notify], environ: Mapping[str, str]
) -> tuple[list[Webhook], list[str]]:
    """The webhooks whose variables are set, and a problem line for each one that is not."""
    found, problems = [], []
    for entry in notify:
        url = environ.get(entry.url_env, "").strip()
        if url:
            found.append(Webhook(entry.url_env, url))
        else:
            problems.append(f"notify: {entry.url_env} is not set; that webhook is skipped")
    return found, problems


class Notifier:
    """Queues messages per webhook and posts them in order from one background task each."""

    def __init__(
        self,
        hooks: Sequence[Webhook],
        *,
        say: Callable[[str], None] = lambda line: None,
        redact: Callable[[str], str] = lambda text: text,
        backoff_s: Sequence[float] = BACKOFF_S,
        timeout_s: float = 10.0,
    ) -> None:
        self.hooks = list(hooks)
        self._say = say
        self._redact = redact
        self._backoff = tuple(backoff_s)
        self._queues: dict[str, deque[str]] = {h.name: deque() for h in self.hooks}
        self._dropped: dict[str, int] = {h.name: 0 for h in self.hooks}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self.sent = 0

    def start(self) -> None:
        for hook in self.hooks:
            self._wake[hook.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(hook), name=f"notify {hook.name}"))

    def send(self, text: str) -> None:
        """Queue one message for every webhook; returns at once."""
        text = self._redact(text)
        for hook in self.hooks:
            queue = self._queues[hook.name]
            if len(queue) >= MAX_QUEUE:
                queue.popleft()
                self._dropped[hook.name] += 1
            queue.append(text)
            if hook.name in self._wake:
                self._wake[hook.name].set()

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _run(self, hook: Webhook) -> None:
        queue, wake = self._queues[hook.name], self._wake[hook.name]
        failures = 0
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            dropped = self._dropped[hook.name]
            text = queue[0]
            if dropped:
                text = f"({dropped} older messages were dropped while this webhook failed)\n{text}"
            try:
                response = await self._client.post(hook.url, json={"text": text})
                ok = response.status_code < 300
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, problem = False, type(exc).__name__
            if ok:
                queue.popleft()
                self._dropped[hook.name] = 0
                self.sent += 1
                if failures:
                    self._say(f"notify: {hook.name} works again")
                failures = 0
                continue
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            if failures == 0:  # said once per outage, not per retry
                self._say(
                    f"notify: the webhook in {hook.name} failed ({problem}); retrying with "
                    "backoff, messages queue meanwhile"
                )
            failures += 1
            await asyncio.sleep(delay)

    async def aclose(self, drain_s: float = 3.0) -> None:
        """Give queued messages a moment to go, then stop."""
        deadline = asyncio.get_running_loop().time() + drain_s
        while self.pending() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
