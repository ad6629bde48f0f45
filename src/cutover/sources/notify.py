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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cutover.runbook.model import Notify
from cutover.sources import httpclient

if TYPE_CHECKING:  # imported when a message is sent (httpclient: without its CLI's ~0.1 s)
    import httpx

BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
MAX_QUEUE = 500  # messages waiting per webhook; beyond this the oldest are dropped (and said)
# Messages queued while a webhook was down go out together, a few per post: Slack allows
# about one post a second per webhook, and a backlog should not take minutes to arrive.
BATCH = 20
BATCH_CHARS = 3500  # Slack shows about 4,000 characters of a message before folding it
MAX_RETRY_AFTER_S = 300.0
CLOSE_S = 2.0  # how long closing waits for a post in flight


@dataclass(frozen=True)
class Webhook:
    name: str  # the variable holding the URL: how the webhook is named on screen
    url: str = field(repr=False)  # a secret: never in a repr, a log line or a traceback


def webhooks(
    notify: Sequence[Notify], environ: Mapping[str, str]
) -> tuple[list[Webhook], list[str]]:
    """The webhooks whose variables hold an http(s) URL, and a problem line for each one
    that does not (the value itself is never shown)."""
    found, problems = [], []
    for entry in notify:
        url = environ.get(entry.url_env, "").strip()
        if not url:
            problems.append(f"notify: {entry.url_env} is not set; that webhook is skipped")
            continue
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (a port out of range raises here, not at the first post)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                f"notify: {entry.url_env} does not hold an http(s) URL (an incoming webhook "
                "looks like https://hooks.slack.com/services/…); that webhook is skipped"
            )
            continue
        found.append(Webhook(entry.url_env, url))
    return found, problems


def retry_after(response: httpx.Response) -> float | None:
    """A 429's or 503's Retry-After in seconds (bounded), when it gives one in seconds."""
    raw = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S) if seconds == seconds else None


def tell_now(hooks: Sequence[Webhook], text: str, timeout_s: float = 5.0) -> None:
    """Post one message to every webhook, at once and blocking (bounded): for a process with
    no event loop to spare and nobody left to read its screen (a console whose terminal is
    gone, its rollback retrying). Failures are swallowed: there is nobody to tell."""
    with httpclient.httpx().Client(timeout=timeout_s, follow_redirects=False) as client:
        for hook in hooks:
            with contextlib.suppress(Exception):
                client.post(hook.url, json={"text": text})


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
        head: Callable[[], str] | None = None,
    ) -> None:
        self.hooks = list(hooks)
        # Every post ends with the journal's head hash: a copy of the chain's head kept by
        # the receiver, outside this box.
        self._head = head
        self._say = say
        # The URLs are secrets too, whatever the runbook's redactor knows.
        secrets = [h.url for h in self.hooks]

        def hide(text: str) -> str:
            text = redact(text)
            for url in secrets:
                text = text.replace(url, "***")
            return text

        self._redact = hide
        self._backoff = tuple(backoff_s)
        self._queues: dict[str, deque[str]] = {h.name: deque() for h in self.hooks}
        self._dropped: dict[str, int] = {h.name: 0 for h in self.hooks}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []
        self._client = httpclient.httpx().AsyncClient(timeout=timeout_s, follow_redirects=False)
        # httpx's timeout is per read: a receiver that drips a byte every few seconds would
        # hold a post for ever. A delivery that has not finished in this is failed and said.
        self._deadline_s = timeout_s
        self.sent = 0  # posts that went through
        self._closing = False

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

    def _batch(self, name: str) -> tuple[str, int, int]:
        """The next post's text, how many queued messages it carries, and how many dropped
        messages it reports."""
        queue, dropped = self._queues[name], self._dropped[name]
        parts: list[str] = []
        size = 0
        for text in queue:
            if parts and (len(parts) >= BATCH or size + len(text) + 1 > BATCH_CHARS):
                break
            parts.append(text)
            size += len(text) + 1
        body = "\n".join(parts)
        if dropped:
            body = f"({dropped} older messages were dropped while this webhook failed)\n{body}"
        return body, len(parts), dropped

    async def _post(self, hook: Webhook, text: str) -> tuple[bool, str, float | None]:
        """(delivered, what went wrong, how long the receiver asked us to wait)."""
        if self._head is not None:
            try:
                text = f"{text}\n— {self._head()}"
            except OSError:
                text = f"{text}\n— journal head unreadable"
        try:
            async with asyncio.timeout(self._deadline_s):
                response = await self._client.post(hook.url, json={"text": text})
        except TimeoutError:
            return False, f"no answer within {self._deadline_s:g}s", None
        except Exception as exc:  # any failure is a retry, never a dead notifier
            # Only the type: an exception's text may quote the URL, which is a secret.
            return False, type(exc).__name__, None
        if response.status_code < 300:
            return True, "", None
        problem = f"HTTP {response.status_code}"
        if response.status_code in (401, 403, 404, 410):
            problem += f": the receiver refuses it; check the URL in {hook.name}"
        return False, problem, retry_after(response)

    async def _run(self, hook: Webhook) -> None:
        queue, wake = self._queues[hook.name], self._wake[hook.name]
        failures = 0
        while not self._closing:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            text, count, dropped = self._batch(hook.name)
            ok, problem, wait = await self._post(hook, text)
            task = asyncio.current_task()
            if self._closing or (task is not None and task.cancelling()):
                # A cancel that arrived mid-connect can come back from the HTTP client as
                # an ordinary error: the loop must still end, or closing waits forever.
                return
            if ok:
                for _ in range(min(count, len(queue))):
                    queue.popleft()
                self._dropped[hook.name] -= dropped  # more may have been dropped meanwhile
                self.sent += 1
                if failures:
                    self._say(f"notify: {hook.name} works again")
                failures = 0
                continue
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            if wait is not None:
                delay = max(delay, wait)
            if failures == 0:  # said once per outage, not per retry
                self._say(
                    f"notify: the webhook in {hook.name} failed ({problem}); retrying with "
                    "backoff, messages queue meanwhile"
                )
            failures += 1
            await asyncio.sleep(delay)

    async def aclose(self, drain_s: float = 3.0) -> None:
        """Give queued messages a moment to go, then stop (and say what did not go)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while self.pending() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: stopping the watcher must never hang on a webhook.
            _, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_S)
            for task in stuck:
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), CLOSE_S)
        for name, queue in self._queues.items():
            if queue:
                self._say(f"notify: {len(queue)} message(s) for {name} were not delivered")
