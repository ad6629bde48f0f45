"""Cyclic garbage: what the console leaves for the collector's passes to find, per second,
with every panel of the shipped runbook refreshing at 1 s (plus the 10,000-row log shifting
by one row a second) on the bench database and the demo's platforms, headless, in this
process. Baseline, in the same run, interleaved round by round: a bare Textual app that
repaints one line a second (what Textual itself leaves, which no console code can avoid).

Per round and app: objects found unreachable per second (gc.DEBUG_SAVEALL over the window,
the collector off meanwhile), the kinds that dominate, and the collector's passes as they
would run (collector on, in a second window): generation-2 passes and the longest pause.

Run: .venv/bin/python bench/garbage.py   [ROUNDS=3] [GARBAGE_S=20] [BENCH_ROWS=100000]
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import BigDatabase, Platform, Row, Samples, print_table, runbook_copy, say, scratch


class Passes:
    """The collector's passes while installed: count by generation, longest pause."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.full = 0
        self.longest_ms = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            pause = (time.perf_counter() - self.started) * 1000
            self.longest_ms = max(self.longest_ms, pause)
            self.full += info["generation"] == 2
            self.started = None


async def window(pilot, seconds: float) -> tuple[float, list[tuple[str, int]], Passes]:
    """(unreachable objects per second, top kinds, passes) over two windows of `seconds`."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await pilot.pause(seconds)
        found = gc.collect()
        kinds = collections.Counter(type(o).__name__ for o in gc.garbage).most_common(4)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    passes = Passes()
    gc.callbacks.append(passes)
    try:
        await pilot.pause(seconds)
    finally:
        gc.callbacks.remove(passes)
    return found / seconds, kinds, passes


async def console_round(book: Path, env: dict[str, str], seconds: float):
    from cutover.judge.session import Session
    from cutover.runbook import loader
    from cutover.tui.app import CutoverApp

    app = CutoverApp(Session(loader.load(book), env), probe_poll_s=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(8)  # every panel mounted and answered once
        return await window(pilot, seconds)


def bare_app():
    """A Textual app that repaints one line a second: the floor no console code can go under."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("", id="line")

        def on_mount(self) -> None:
            self.set_interval(1.0, self.tick)

        def tick(self) -> None:
            self.query_one("#line", Static).update(f"{time.time():.0f} s since the epoch")

    return Bare()


async def bare_round(seconds: float):
    async with bare_app().run_test(size=(160, 48)) as pilot:
        await pilot.pause(2)
        return await window(pilot, seconds)


def main() -> None:
    rounds = int(os.environ.get("ROUNDS", "3"))
    seconds = float(os.environ.get("GARBAGE_S", "20"))
    os.environ.setdefault("BENCH_ROWS", "100000")
    database = BigDatabase(int(os.environ["BENCH_ROWS"])).start()
    platform = Platform().start()
    platform.set_flag(10)
    rates = {"console": Samples(), "bare": Samples()}
    longest = {"console": Samples(), "bare": Samples()}
    full = {"console": Samples(), "bare": Samples()}
    with scratch("cutover-bench-garbage-") as folder:
        book = runbook_copy(folder, every_s=1, shifting=True)
        env = {**os.environ, **platform.env(), "CUTOVER_DATABASE_URL": database.dsn}
        try:
            measure(book, env, rounds, seconds, rates, longest, full)
        finally:
            platform.stop()
            database.stop()
    bare = "bare Textual app, 1 repaint/s"
    print_table(
        [
            Row("cyclic garbage found, objects/s", rates["console"], rates["bare"], bare, "n"),
            Row("longest collector pause", longest["console"], longest["bare"], bare, "ms"),
            Row("full (gen-2) passes per window", full["console"], full["bare"], bare, "n"),
        ],
        title=f"cyclic garbage at 1 s refresh, {seconds:.0f} s windows, {rounds} rounds",
    )


def measure(book, env, rounds, seconds, rates, longest, full) -> None:
    for n in range(rounds):
        for name in ("bare", "console"):
            run = bare_round(seconds) if name == "bare" else console_round(book, env, seconds)
            rate, kinds, passes = asyncio.run(run)
            rates[name].add(rate)
            longest[name].add(passes.longest_ms / 1000)
            full[name].add(passes.full)
            said = ", ".join(f"{k} {v}" for k, v in kinds)
            say(
                f"round {n + 1} {name}: {rate:.0f} unreachable/s ({said}); "
                f"{passes.full} full passes, longest pause {passes.longest_ms:.0f} ms"
            )


if __name__ == "__main__":
    main()
