"""`cutover watch`: the watcher as a headless process for tmux, systemd or cron. It holds the
journal's watch lock for its whole life, stops cleanly on SIGTERM, SIGINT or SIGHUP (a
rollback in flight finishes first; a second signal stops it), and exits 0 when stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime

from cutover.cli.common import ERROR, OK, UsageError, err, out, session_for
from cutover.judge.session import Session
from cutover.sources import db
from cutover.traffic import detach
from cutover.watch.lock import WatcherRunning
from cutover.watch.serve import serve
from cutover.watch.watcher import Watcher, watch_actor


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
    lock = session.store.watch_lead(actor=session.journal.actor, host=session.journal.host)
    try:
        lock.acquire(datetime.now(UTC))
    except WatcherRunning as exc:
        err(f"cutover watch: {exc}")
        return ERROR
    session.store.follow()  # team mode: the others' moves and sign-offs heard at once
    with lock:
        return asyncio.run(_watch(session, once=bool(args.once)))


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
