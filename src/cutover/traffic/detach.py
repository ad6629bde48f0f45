"""A rollback in flight outlives its terminal: a dropped SSH session (SIGHUP) or a polite
kill (SIGTERM) does not stop it half-way, with the variable at 0 and production still live
at the old percent. The process detaches from the dead terminal, finishes, journals the
outcome, and exits after."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# A second Ctrl-C within this many seconds stops the rollback; one alone only warns.
SECOND_INTERRUPT_S = 5.0


def detach_stdio(log: Path | None) -> None:
    """Point stdin at /dev/null and stdout/stderr at `log` (or /dev/null): writes to a hung-up
    terminal fail or block, and a rollback must not die of a progress line."""
    fd_in = os.open(os.devnull, os.O_RDONLY)
    target = None
    if log is not None:
        try:
            log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            target = None
    fd_out = target if target is not None else os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os.dup2(fd_in, 0)
    os.dup2(fd_out, 1)
    os.dup2(fd_out, 2)
    os.close(fd_in)
    os.close(fd_out)


@contextmanager
def outlive_terminal(say: Callable[[str], None], log: Path | None = None) -> Iterator[list[int]]:
    """While the block runs, SIGHUP and SIGTERM do not end the process: the first detaches
    stdio (to `log`, when given) and is recorded in the yielded list; a second SIGTERM
    ends it (the journal's intent is then settled by the next command). Ctrl-C warns
    first and stops only when pressed again within a few seconds."""
    received: list[int] = []
    last_interrupt = [0.0]

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGTERM and signal.SIGTERM in received:
            raise SystemExit(128 + signum)
        first = not received
        received.append(signum)
        if first:
            if signum == signal.SIGHUP:
                detach_stdio(log)
            name = signal.Signals(signum).name
            say(f"{name} received: the rollback in flight finishes first, then this exits")

    def on_interrupt(signum: int, frame: object) -> None:
        now = time.monotonic()
        if now - last_interrupt[0] < SECOND_INTERRUPT_S:
            raise KeyboardInterrupt
        last_interrupt[0] = now
        say(
            "a rollback is in flight and will finish; press Ctrl-C again within "
            f"{SECOND_INTERRUPT_S:g} s to stop it (the flag may be left half-changed)"
        )

    handlers = {signal.SIGHUP: on_signal, signal.SIGTERM: on_signal, signal.SIGINT: on_interrupt}
    previous = {}
    for signum, handler in handlers.items():
        # Outside the main thread (a test calling in) there is no handler to set.
        with suppress(ValueError):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
