"""The floor for key → screen and for loop stalls: a Textual app that does nothing but open a
help screen on `?` (and close it on Escape), in the same terminal as the console and at the
same time. What is left of the console's latency above this is the console's own. With
$BENCH_PROBE_OUT it counts its event loop's stalls over 50 ms as the console's probe does.

Run by bench/console.py inside tmux; not a benchmark by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

STALL_S = 0.05
TICK_S = 0.005


class Help(ModalScreen[None]):
    BINDINGS = [("escape", "app.pop_screen", "close")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        yield Static("Help · Esc closes\n\nSeverity: critical, high, medium.")


class Minimal(App[None]):
    BINDINGS = [("question_mark", "help", "help"), ("q", "quit", "quit")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        yield Static("minimal: press ? for help")

    def on_mount(self) -> None:
        out = os.environ.get("BENCH_PROBE_OUT")
        if out:
            self.run_worker(watch(Path(out)), exit_on_error=False)

    def action_help(self) -> None:
        self.push_screen(Help())


async def watch(out: Path) -> None:
    stalls: list[tuple[float, float]] = []
    written = time.monotonic()
    while True:
        before = time.monotonic()
        await asyncio.sleep(TICK_S)
        gap = time.monotonic() - before - TICK_S
        if gap > STALL_S:
            stalls.append((before, gap))
        if time.monotonic() - written > 1:
            written = time.monotonic()
            out.write_text(json.dumps({"stalls": stalls, "at": written}))


if __name__ == "__main__":
    Minimal().run()
