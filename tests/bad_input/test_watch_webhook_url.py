"""A webhook variable that does not hold a usable URL: skipped with a line naming the
variable (never its value), and a URL no HTTP client can use never kills the notifier."""

from __future__ import annotations

import asyncio

import pytest

from cutover.runbook.model import Notify
from cutover.sources.notify import Notifier, Webhook, webhooks

SECRET = "s3cretHookPath9f2c"


@pytest.mark.parametrize(
    "value",
    [
        f"hooks.slack.com/services/{SECRET}",  # no scheme
        f"ftp://hooks.example/{SECRET}",
        f"http://127.0.0.1:99999/{SECRET}",  # a port out of range
        f"http://[{SECRET}",  # not a URL at all
    ],
)
def test_a_webhook_variable_without_a_usable_url_is_skipped_by_name(value: str) -> None:
    found, problems = webhooks([Notify("webhook", "HOOK")], {"HOOK": value})

    assert found == []
    assert problems == [
        "notify: HOOK does not hold an http(s) URL (an incoming webhook looks like "
        "https://hooks.slack.com/services/…); that webhook is skipped"
    ]
    assert SECRET not in repr(problems)


async def test_a_url_the_http_client_cannot_use_is_said_once_and_never_kills_the_notifier() -> None:
    said: list[str] = []
    # httpx raises an ExceptionGroup (no httpx error) for this port; before, that ended the
    # webhook's task without a word and every later message queued for nobody.
    hook = Webhook("HOOK", f"http://127.0.0.1:99999/{SECRET}")
    notifier = Notifier([hook], say=said.append, backoff_s=(0.01,))
    notifier.start()
    for n in range(5):
        notifier.send(f"message {n}")
    await asyncio.sleep(0.3)
    alive = not notifier._tasks[0].done()
    await notifier.aclose(drain_s=0)

    assert alive
    assert said[0] == (
        "notify: the webhook in HOOK failed (ExceptionGroup); retrying with backoff, "
        "messages queue meanwhile"
    )
    assert said[1] == "notify: 5 message(s) for HOOK were not delivered"
    assert SECRET not in "\n".join(said)
    assert SECRET not in repr(hook)
