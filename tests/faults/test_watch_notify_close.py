"""Stopping the watcher never hangs on a webhook: a cancel that lands while the HTTP client
is connecting can come back as an ordinary connection error (the cancel swallowed), and the
notifier's loop then slept on as if nothing had asked it to stop, so closing it waited
forever and `cutover watch` never exited on SIGTERM."""

from __future__ import annotations

import asyncio

from cutover.sources.notify import Notifier, Webhook


async def test_closing_the_notifier_while_it_retries_a_dead_webhook_always_ends() -> None:
    for attempt in range(60):
        said: list[str] = []
        # Nobody listens on this port: every post fails while connecting.
        notifier = Notifier(
            [Webhook("HOOK", "http://127.0.0.1:99999/x")], say=said.append, backoff_s=(0.005,)
        )
        notifier.start()
        for n in range(3):
            notifier.send(f"message {n}")
        await asyncio.sleep(0.02 + (attempt % 7) * 0.011)  # land the close anywhere

        closing = asyncio.ensure_future(notifier.aclose(drain_s=0))
        done, _ = await asyncio.wait({closing}, timeout=15)

        assert closing in done, f"closing hung (attempt {attempt})"
        assert said[-1] == "notify: 3 message(s) for HOOK were not delivered"
