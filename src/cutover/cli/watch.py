"""`cutover watch`: the watcher as a headless process for tmux, systemd or cron. It holds the
journal's watch lock for its whole life, stops cleanly on SIGTERM, SIGINT or SIGHUP (a
rollback in flight finishes first; a second signal stops it), and exits 0 when stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from cutover import db, detach, notify
from cutover.cli_moves import open_flag_or_none
from cutover.cliutil import ERROR, OK, UsageError, err, out, session_for
from cutover.session import Session
from cutover.watch import Watcher, watch_actor
from cutover.watchlock import WatcherRunning, WatchLock


def cmd_watch(args: argparse.Namespace) -> int:
    session = session_for(args)
    book = session.runbook
    name = book.database.dsn_env
    dsn = session.environ.get(name, "").strip()
    if not dsn:
        raise UsageError(
            f"{name} is not set: the watcher has nothing to evaluate; export the database's "
            "DSN (a read-only role) in it"
        )
    try:
        db.check_dsn(dsn, name)
    except db.DatabaseUnavailable as exc:
        raise UsageError(str(exc)) from None
    # The journal says the watcher acted, and who started it.
    session.journal.actor = watch_actor(dict(session.environ))
    lock = WatchLock(book.journal_path, actor=session.journal.actor, host=session.journal.host)
    try:
        lock.acquire(datetime.now(UTC))
    except WatcherRunning as exc:
        err(f"cutover watch: {exc}")
        return ERROR
    with lock:
        return asyncio.run(_watch(session, once=bool(args.once)))


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
        hooks, say=lambda line: watcher.say(line, notify=False), redact=session.redact
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


async def _watch(session: Session, *, once: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[int] = []
    watchers: list[Watcher] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if not watchers:
            stop.set()
            return
        watcher = watchers[0]
        if len(received) == 1:
            name = signal.Signals(signum).name
            watcher.stopped_by = name
            if signum == signal.SIGHUP:
                # The terminal is gone: later lines go to a log beside the journal.
                detach.detach_stdio(session.runbook.journal_path.with_name("detached.log"))
            if watcher.rolling_back:
                watcher.say(
                    f"{name} received: the rollback in flight finishes first, then the "
                    "watcher stops; send it again to stop the rollback now"
                )
            stop.set()
        else:
            watcher.abandon_rollback()

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await serve(session, out=out, stop=stop, once=once, on_watcher=watchers.append)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    if once and watchers and watchers[0].db_down_since is not None:
        return ERROR  # cron's mail: nothing could be evaluated this time
    return OK
