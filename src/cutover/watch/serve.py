"""One watcher's whole life: open the flag, the webhooks and the database, watch until told
to stop, close them all. The CLI runs it under its signals, the demo on a thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cutover.judge.session import Session
from cutover.sources import notify
from cutover.traffic.flags import open_flag_or_none
from cutover.watch.watcher import Watcher


def _quiet_driver() -> None:
    """asyncpg logs its pool's failed reconnects with a traceback, to stderr when nobody
    configured logging: the watcher says an outage once, in its own words, instead."""
    driver = logging.getLogger("asyncpg")
    if not any(isinstance(h, logging.NullHandler) for h in driver.handlers):
        driver.addHandler(logging.NullHandler())
    driver.propagate = False


async def serve(
    session: Session,
    *,
    out: Callable[[str], None],
    stop: asyncio.Event,
    once: bool = False,
    on_watcher: Callable[[Watcher], None] = lambda watcher: None,
) -> None:
    """Open the flag, the webhooks and the database; watch until `stop` is set (or one
    cycle); close them all. The CLI runs it under its signals, the demo in a thread."""
    book = session.runbook
    _quiet_driver()
    flag, problem = open_flag_or_none(session)
    hooks, problems = notify.webhooks(book.notify, session.environ)
    notifier = notify.Notifier(
        hooks,
        say=lambda line: watcher.say(line, notify=False),
        redact=session.redact,
        head=session.journal.head_words,
    )
    watcher = Watcher(
        session,
        runner=session.runner(),
        flag=flag,
        flag_problem=problem,
        out=out,
        notifier=notifier,
    )
    on_watcher(watcher)
    notifier.start()
    for line in problems:
        watcher.say(line, notify=False)
    try:
        if once:
            await watcher.once()
        else:
            await watcher.run(stop)
    finally:
        await notifier.aclose()
        await watcher.runner.aclose()
        if flag is not None:
            await flag.aclose()
