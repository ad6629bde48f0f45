"""The console under load: a panel of 10,000 rows that shift every refresh must not freeze
it (ctrl+r still opens the rollback dialog), and the column a gate reads is never cut off."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from textual.widgets import DataTable

from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import RollbackScreen
from cutover.tui.widgets.query_panel import QueryPanel
from tui.conftest import RUNBOOK, T0, session_for, until, write_runbook

MESSAGES = ("ok", "timeout after 30 s", "v2 chunker: KeyError 'conversation_id'", "rate limited")


def log_row(n: int) -> tuple:
    """Row n of an endless log, newest first; widths vary from row to row."""
    return (f"import {n}", MESSAGES[n % 4] * (1 + n % 3), n % 17)


@dataclass
class ShiftingRunner:
    """The errors query answers with `size` rows, newest first, one newer on each run (every
    row moves down by one); the success query with one row of `success`."""

    size: int
    success: tuple[tuple[str, ...], tuple]
    runs: int = 0
    seen: list[str] = field(default_factory=list)

    async def connect(self) -> None:
        return None

    async def run(self, query: Query, *args: object) -> QueryResult:
        self.seen.append(query.id)
        ran_at = T0 - timedelta(seconds=5)
        if query.id == "success":
            columns, row = self.success
            return QueryResult("success", columns, (row,), ran_at=ran_at, duration_s=0.01)
        self.runs += 1
        newest = self.size + self.runs
        rows = tuple(log_row(n) for n in range(newest, newest - self.size, -1))
        return QueryResult("errors", ("import", "error", "n"), rows, ran_at=ran_at, duration_s=0.5)

    async def aclose(self) -> None:
        return None


def console(tmp_path, runner: ShiftingRunner, runbook_text: str = RUNBOOK) -> CutoverApp:
    path = write_runbook(tmp_path, percent=10, hold="0s")
    path.write_text(runbook_text.replace("{hold}", "0s"))
    session = session_for(path, clock=lambda: T0 - timedelta(hours=1))
    session.journal.append(
        "advance.intent",
        action="a1",
        from_stage="prep",
        to_stage="canary",
        from_percent=0,
        to_percent=10,
        reason="",
    )
    session.journal.append(
        "advance.done", action="a1", flag_percent=10, verified="flag reads 10 %", took_s=0.1
    )
    return CutoverApp(session, clock=lambda: T0, runner_factory=lambda: runner, probe_poll_s=None)


async def test_a_ten_thousand_row_panel_shifting_every_refresh_still_opens_the_rollback_dialog(
    tmp_path,
):
    runner = ShiftingRunner(10_000, (("rate",), (99.5,)))
    app = console(tmp_path, runner)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one("#panel-errors", QueryPanel).table

        def filled(newest: int) -> bool:
            return table.row_count == 10_000 and table.get_row_at(0)[0].plain == newest

        await until(pilot, lambda: filled("import 10001"), 120)
        table.move_cursor(row=3)
        for newest in ("import 10002", "import 10003"):  # every row moves down one, twice
            app.refresher.refresh_now()
            await until(pilot, lambda n=newest: filled(n), 120)
        assert table.cursor_row == 3  # left where the operator put it
        app.refresher.refresh_now()
        await until(pilot, lambda: runner.runs == 4, 60)
        await pilot.press("ctrl+r")  # while the panel refills
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen), 30)


LONG = "success_rate_pct_over_the_last_24_hours"
WIDE = (
    ("judged_imports_last_24_hours", 1000),
    ("completed_imports_last_24_hours", 982),
    ("failed_imports_last_24_hours", 18),
    ("stuck_imports_right_now", 0),
    ("median_duration_minutes", 7.25),
    ("slowest_import_in_the_window", "import 4e1c9d0a-71b2-4f0e-9c55-0d3b1a2c9e77"),
    (LONG, 98.2),
)


def screen_lines(app) -> list[str]:
    update = app.screen._compositor.render_full_update(simplify=True)
    return ["".join(strip.text for strip in line) for line in update.strips]


async def test_the_column_a_gate_reads_is_shown_whole_with_its_value_at_160_columns(tmp_path):
    columns = tuple(name for name, _ in WIDE)
    runner = ShiftingRunner(3, (columns, tuple(value for _, value in WIDE)))
    runbook_text = RUNBOOK.replace('column = "rate"', f'column = "{LONG}"')
    app = console(tmp_path, runner, runbook_text)
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one("#panel-success", QueryPanel)
        await until(pilot, lambda: any("judged_imports" in line for line in screen_lines(app)))
        await pilot.pause(0.2)
        lines = screen_lines(app)
        header = next(line for line in lines if "judged_imports" in line)
        assert LONG in header and header.index(LONG) < header.index("judged_imports")
        values = lines[lines.index(header) + 1]
        assert values.index("98.2") < values.index("1,000")
        gate = next(line for line in lines if "gate success:" in line)
        trigger = next(line for line in lines if "trigger success_low" in line)
        assert f"{LONG} = 98.2 · " in gate and f"{LONG} = 98.2 · " in trigger
        assert panel.query_one(DataTable).ordered_columns[0].label.plain == LONG


@dataclass
class CappedRunner(ShiftingRunner):
    """As a QueryRunner answers a query with more rows than it fetches: the first 1,000,
    marked truncated."""

    async def run(self, query: Query, *args: object) -> QueryResult:
        result = await super().run(query, *args)
        if query.id == "success":
            return result
        return QueryResult(
            result.query_id, result.columns, result.rows, result.ran_at, 0.2, truncated=True
        )


async def test_a_capped_result_says_it_shows_only_the_first_rows(tmp_path):
    app = console(tmp_path, CappedRunner(1_000, (("rate",), (99.5,))))
    async with app.run_test(size=(160, 48)) as pilot:
        panel = app.query_one("#panel-errors", QueryPanel)
        await until(pilot, lambda: panel.table.row_count == 1_000)
        line = panel.query_one(".truncated")
        note = str(line.render())
        assert line.display
        assert note == "first 1,000 of ≥ 1,001 rows: cutover fetches at most 1,000 per query"
