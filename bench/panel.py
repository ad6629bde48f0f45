"""A query panel under a big, shifting result (newest first: each refresh one new row on top,
the oldest gone), as a busy log-like query gives it. Measured headless (Textual's pilot):
the time from handing the panel a result until its table has measured it, for

- the panel as it is (rows replaced in one go per refresh, only when they changed);
- the diff the panel used before (`update_cell(..., update_width=True)` per changed cell,
  kept here as `legacy_apply`), at sizes small enough to finish: it is quadratic;

each as a ratio to the same run's baseline: filling the empty panel with the same rows once;
and the longest the event loop stalled during the refreshes (what a key, ctrl+r, waits).

Run: .venv/bin/python bench/panel.py   [ROWS=10000] [LEGACY=250,500,1000]
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from textual.app import App, ComposeResult  # noqa: E402

from cutover.runbook.model import Query  # noqa: E402
from cutover.sources.results import QueryResult  # noqa: E402
from cutover.tui.text import cell  # noqa: E402
from cutover.tui.widgets.query_panel import QueryPanel, same_rows  # noqa: E402

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
COLUMNS = ("id", "started_at", "status", "message")
MESSAGES = ("ok", "timeout after 30 s", "v2 chunker: KeyError 'conversation_id'", "rate limited")


def row(n: int) -> tuple:
    """Row n of an endless log; widths vary from row to row, as real messages do."""
    return (
        n,
        T0 + timedelta(seconds=n),
        ("complete", "failed")[n % 7 == 0],
        MESSAGES[n % 4] * (1 + n % 3),
    )


def shifted(size: int, newest: int) -> QueryResult:
    rows = tuple(row(n) for n in range(newest, newest - size, -1))
    return QueryResult("log", COLUMNS, rows, ran_at=T0, duration_s=0.01)


class Bench(App[None]):
    # The console's own styles: a panel's table is at most 10 lines high, as on screen.
    CSS_PATH = str(ROOT / "src" / "cutover" / "tui" / "cutover.tcss")

    def compose(self) -> ComposeResult:
        yield QueryPanel(Query("log", "Log", Path("log.sql"), None, 30))


def legacy_apply(panel: QueryPanel, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """The panel's diff before: one update_cell per changed cell, each re-measuring."""
    table = panel.table
    old = panel._rows
    with panel.app.batch_update():
        if columns != panel._columns:
            table.clear(columns=True)
            for index, name in enumerate(columns):
                table.add_column(name, key=f"c{index}")
            panel._columns = columns
            old = []
        for r, values in enumerate(rows):
            if r < len(old):
                for c, value in enumerate(values):
                    if not same_rows([(old[r][c],)], [(value,)]):
                        table.update_cell(str(r), f"c{c}", cell(value), update_width=True)
            else:
                table.add_row(*(cell(v) for v in values), key=str(r))
        for r in range(len(rows), len(old)):
            table.remove_row(str(r))
    panel._rows = rows


async def settled(pilot, panel: QueryPanel) -> None:
    """Until the panel has filled its table and the table has measured it (when idle)."""
    table = panel.table
    await pilot.pause()
    while panel._filling or table._require_update_dimensions or table._updated_cells:
        await pilot.pause()


class Stalls:
    """The longest the event loop went without running a 1 ms timer: how long a key
    (ctrl+r) would have waited."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.longest = max(self.longest, time.perf_counter() - before)

    def __enter__(self) -> Stalls:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def time_apply(apply, size: int, refreshes: int) -> tuple[float, float, float]:
    """(first fill, mean of `refreshes` shifting refreshes, longest loop stall in them)."""
    app = Bench()
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one(QueryPanel)
        started = time.perf_counter()
        apply(panel, shifted(size, size))
        await settled(pilot, panel)
        fill = time.perf_counter() - started
        took = []
        with Stalls() as stalls:
            for step in range(1, refreshes + 1):
                started = time.perf_counter()
                apply(panel, shifted(size, size + step))
                await settled(pilot, panel)
                took.append(time.perf_counter() - started)
    return fill, sum(took) / len(took), stalls.longest


def now_apply(panel: QueryPanel, result: QueryResult) -> None:
    panel.show_result(result)


def old_apply(panel: QueryPanel, result: QueryResult) -> None:
    legacy_apply(panel, result.columns, list(result.rows))


def measure(rounds: int, size: int = 1000) -> list:
    """For the table of `make bench`: a refill of `size` shifting rows against filling the
    same panel with them once (the fetch cap makes 1,000 the most a panel holds)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import Row, Samples

    fills, refills, stalls = Samples(), Samples(), Samples()
    # make bench runs this in the process that has run every row before it: the collector's
    # full passes over that heap (~100-150 ms) landed in the refills and read as the panel's
    # stall (154 ms, against 34-42 ms for the same code in a fresh process). Set aside, as a
    # console's own start sets aside what it built (tui/collector.settle).
    gc.collect()
    gc.freeze()
    try:
        for _ in range(rounds):
            fill, refill, stall = asyncio.run(time_apply(now_apply, size, 5))
            fills.add(fill)
            refills.add(refill)
            stalls.add(stall)
    finally:
        gc.unfreeze()
    return [
        Row(
            f"panel refill, {size:,} rows shifted by one",
            refills,
            fills,
            "first fill, same rows",
            unit="ms",
        ),
        Row(
            "  longest loop stall during those refills",
            stalls,
            unit="ms",
            goal="≤ 50 ms",
            met=stalls.median <= 0.05,
        ),
    ]


async def main() -> None:
    size = int(os.environ.get("ROWS", "10000"))
    legacy = [int(n) for n in os.environ.get("LEGACY", "250,500,1000").split(",") if n]
    print(f"a panel of {len(COLUMNS)} columns whose rows shift by one each refresh")
    print(f"{'rows':>7}  {'how':<19} {'fill':>8} {'refresh':>8} {'ratio':>7} {'stall':>8}")

    def line(n: int, how: str, fill: float, refresh: float, stall: float) -> None:
        ratio = refresh / fill
        print(f"{n:>7,}  {how:<19} {fill:>7.3f}s {refresh:>7.3f}s {ratio:>6.1f}× {stall:>7.3f}s")

    for n in legacy:
        line(n, "before (per cell)", *await time_apply(old_apply, n, 2))
    for n in sorted({*legacy, size}):
        line(n, "now (replace rows)", *await time_apply(now_apply, n, 5))


if __name__ == "__main__":
    asyncio.run(main())
