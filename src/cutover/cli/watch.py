"""`cutover watch`: the watcher as a headless process for tmux, systemd or cron. It holds the
journal's watch lock for its whole life, stops cleanly on SIGTERM, SIGINT or SIGHUP (a
rollback in flight finishes first; a second signal stops it), and exits 0 when stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from datetime import UTC, datetime

from cutover.cli.common import ERROR, OK, UsageError, err, out, session_for
from cutover.judge.session import Session
from cutover.record.store.base import WatchLead
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
    session.store.follow()  # team mode: the others' moves and sign-offs heard at once
    took_over = ""
    while True:
        try:
            lock.acquire(datetime.now(UTC))
        except WatcherRunning as exc:
            if not lock.standby or args.once:
                err(f"cutover watch: {exc}")
                return ERROR
            took_over = _stand_by(lock, exc.holder)
        with lock:
            code = asyncio.run(_watch(session, once=bool(args.once), lock=lock, said=took_over))
        if code != LOST:
            return code
        took_over = ""  # the lead was lost: stand by again, and take it back when it is free


# `_watch` ends so when its lead ended under it (its connection to the store was lost).
LOST = -1
STANDBY_POLL_S = 2.0  # with the server's keepalives (~20 s), a takeover within 30 s


def _stand_by(lock: WatchLead, holder: str) -> str:
    """Wait until the lead is free, then take it; what to say on taking it. Ctrl-C or a
    signal ends a standby as any process (it holds nothing, and does nothing)."""
    out(
        f"standing by: {holder} leads this cutover (evaluates and acts); this watcher takes "
        "over when it stops"
    )
    while True:
        time.sleep(STANDBY_POLL_S)
        try:
            lock.acquire(datetime.now(UTC))
        except WatcherRunning as exc:
            holder = exc.holder
            continue
        except OSError:  # the store unreachable: keep standing by
            continue
        return (
            f"took over the lead from {holder}, which stopped leading (its connection to the "
            "state store ended): this watcher evaluates and acts from now"
        )


async def _watch(
    session: Session, *, once: bool, lock: WatchLead | None = None, said: str = ""
) -> int:
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

    lost: list[str] = []

    def started(watcher: Watcher) -> None:
        watchers.append(watcher)
        if said:
            watcher.say(said, urgent=True)  # to the log and every webhook

    def say(line: str) -> None:
        if watchers:
            watchers[0].say(line, urgent=True)  # to the log and every webhook

    async def keep_the_lead() -> None:
        # Exactly one watcher acts. When this one's hold on the lead ends (its connection to
        # the store was lost), it takes the lead back as soon as the store answers, or, if
        # another watcher leads by then, stops evaluating and stands by. Until the store
        # answers it goes on: it can record nothing, and an armed auto_rollback acting twice
        # is still one rollback to safety.
        adrift = False
        while lock is not None and not stop.is_set():
            await asyncio.sleep(1.0)
            if lock.check() != "lost":
                continue
            try:
                await asyncio.to_thread(lock.acquire, datetime.now(UTC))
            except WatcherRunning as exc:
                lost.append(exc.holder)
                say(f"lost the lead to {exc.holder}: this watcher stops evaluating and stands by")
                stop.set()
            except OSError:
                if not adrift:
                    say(
                        "the state store cannot be reached, so this watcher's lead cannot be "
                        "confirmed: it goes on evaluating (recording nothing; an armed "
                        "auto_rollback still acts) and takes the lead back, or stands by, "
                        "once the store answers"
                    )
                adrift = True
            else:
                if adrift:
                    say("the state store answers again: this watcher leads again")
                adrift = False

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    guard = asyncio.ensure_future(keep_the_lead())
    try:
        await serve(session, out=out, stop=stop, once=once, on_watcher=started)
    finally:
        guard.cancel()
        for signum in handled:
            loop.remove_signal_handler(signum)
    if lost and not received:
        return LOST
    if once and watchers and watchers[0].db_down_since is not None:
        return ERROR  # cron's mail: nothing could be evaluated this time
    return OK
