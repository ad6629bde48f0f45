"""The demo's watcher: `cutover watch` run in a thread of the demo's own process, beside the
console, so the evidence (and the console's hold) counts in seconds as the demo runs. It
stops with the world, whatever way the demo ends, and writes only to its log file: never
over the console's screen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cutover.base import redact
from cutover.base.inert import inert
from cutover.base.private import open_private
from cutover.judge.session import Session
from cutover.runbook.model import Runbook
from cutover.watch.lock import WatcherRunning
from cutover.watch.serve import serve
from cutover.watch.watcher import Watcher, watch_actor

log = logging.getLogger(__name__)


class DemoWatcher:
    def __init__(self, book: Runbook, environ: Mapping[str, str], log_path: Path):
        self.book = book
        self.environ = dict(environ)
        self._redact = redact.for_runbook(book, self.environ)
        self.log_path = log_path
        self.watcher: Watcher | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def start(self, timeout: float = 10.0) -> DemoWatcher:
        self._file = open_private(self.log_path, "a", encoding="utf-8")
        self._thread = threading.Thread(target=self._main, name="demo-watch", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop it and wait (a rollback in flight finishes first, within `timeout`)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it stopped
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write(self, line: str) -> None:
        # Every line, the watcher's and this thread's own errors alike: no secret (a DSN's
        # password in a driver's error) and no escape sequence reaches the log.
        line = inert(self._redact(line))
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # never a traceback over the console: into the logs
            log.exception("the demo's watcher stopped")
            self._write(f"the demo's watcher stopped: {type(exc).__name__}: {exc}")
        finally:
            self._started.set()

    async def _run(self) -> None:
        session = Session(self.book, self.environ)
        session.journal.actor = watch_actor(self.environ)
        lock = session.store.watch_lead(actor=session.journal.actor, host=session.journal.host)
        try:
            lock.acquire(datetime.now(UTC))
        except WatcherRunning as exc:
            self._write(f"the demo's watcher is not started: {exc}")
            return
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()

        def keep(watcher: Watcher) -> None:
            self.watcher = watcher

        with lock:
            await serve(session, out=self._write, stop=self._stop, on_watcher=keep)
