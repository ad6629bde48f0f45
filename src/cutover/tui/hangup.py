"""SIGHUP and SIGTERM: the console leaves promptly even when its event loop is stuck, but
never before an emergency rollback in flight has finished (a dropped SSH link must not
cancel it); a second SIGTERM still ends it.

The handlers are `signal.signal` ones: Python runs them in the main thread between
bytecodes, so a loop busy in Python code cannot swallow them (a loop signal handler waits for
the loop). They only schedule the exit on the loop and start a watchdog thread that ends the
process if the app has not exited a few seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

# What a shell reports for a process ended by the signal: 128 + its number.
EXIT_CODE = {signal.SIGHUP: 129, signal.SIGTERM: 143}
GRACE_S = 2.0


class Leaves(Protocol):
    """The app as the handlers see it."""

    is_headless: bool

    def move_in_flight(self) -> str | None: ...

    def detached(self) -> None: ...

    def hang_up(self, code: int, *, force: bool = False) -> None: ...


class HangUp:
    """Installed by `handlers()`; one per run of the console."""

    def __init__(self, app: Leaves, grace_s: float = GRACE_S) -> None:
        self.app = app
        self.grace_s = grace_s
        self.code: int | None = None  # the first signal's exit code
        self.terms = 0
        self.forced = False
        self.detached = False
        self.done = threading.Event()  # the app has exited: the watchdog stands down
        self._watchdog: threading.Thread | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        """The signal handler. Runs between two bytecodes of whatever the main thread was
        doing, so it only flips flags, moves file descriptors and schedules work."""
        code = EXIT_CODE.get(signal.Signals(signum), 128 + signum)
        if self.code is None:
            self.code = code
        if signum == signal.SIGTERM:
            self.terms += 1
            self.forced = self.terms > 1  # the second SIGTERM: stop even a rollback
        gone = signum == signal.SIGHUP or terminal_gone()
        if gone and not self.detached and not self.app.is_headless:
            self.detached = True
            detach(self.app)
            # Nobody reads the screen now: the move's lines go to a log (on a thread: the
            # handler must not block on a file or a webhook).
            threading.Thread(target=self.app.detached, name="cutover-detached-log").start()
        with contextlib.suppress(RuntimeError):  # no loop running (starting or ending)
            asyncio.get_running_loop().call_soon_threadsafe(
                lambda: self.app.hang_up(self.code or code, force=self.forced)
            )
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="cutover-hang-up", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        """Ends the process when the app has not exited `grace_s` after the signal, counted
        from when no emergency rollback is in flight any more."""
        deadline: float | None = None
        while not self.done.wait(0.1):
            if self.app.move_in_flight() == "rollback" and not self.forced:
                deadline = None
                continue
            if deadline is None:
                deadline = time.monotonic() + self.grace_s
            elif time.monotonic() >= deadline:
                os._exit(self.code or 1)


def terminal_gone() -> bool:
    """Whether the controlling terminal has hung up (a hung-up tty answers EIO)."""
    try:
        termios.tcgetattr(sys.__stdin__.fileno())  # type: ignore[union-attr]
    except (termios.error, OSError, ValueError, AttributeError):
        return True
    return False


def detach(app: object) -> None:
    """The terminal is gone: stdin, stdout and stderr become /dev/null, so that Textual's
    writes cannot fail (a write to a hung-up tty is EIO, which kills Textual's writer
    thread and then blocks the loop once its queue is full) and nothing reads a dead tty."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    finally:
        os.close(null)
    driver = getattr(app, "_driver", None)  # Textual has no public handle on these
    threading.Thread(
        target=_quiet_driver, args=(driver,), name="cutover-detached", daemon=True
    ).start()


def _quiet_driver(driver: object) -> None:
    # Off the signal handler: setting an Event takes a lock the main thread may hold.
    exit_event = getattr(driver, "exit_event", None)
    if exit_event is not None:
        exit_event.set()  # the key reader stops: /dev/null would read as an endless EOF
    writer = getattr(driver, "_writer_thread", None)
    queue = getattr(writer, "_queue", None)
    if writer is None or queue is None:
        return
    writer.join()  # ends at exit, or earlier if a write to the dead tty killed it
    while True:  # then nobody would empty its queue and the loop would block on it
        queue.get()


@contextlib.contextmanager
def handlers(app: Leaves, grace_s: float = GRACE_S) -> Iterator[HangUp]:
    """SIGHUP and SIGTERM handled as above while the console runs (main thread only)."""
    hang_up = HangUp(app, grace_s)
    previous = {sig: signal.signal(sig, hang_up) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        yield hang_up
    finally:
        hang_up.done.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
