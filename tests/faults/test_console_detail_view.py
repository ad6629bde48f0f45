"""Any row opens its detail with Enter, unclipped. Once, clipped cells read as other values
(`RAISED` as `RAI`, `V2_ROLLOUT_PERCENT=1` for `=10`) and step texts were cut at ~50 columns."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from cutover.tui.screens.detail import DetailScreen
from cutover.tui.widgets.query_panel import QueryPanel
from tui.conftest import fixed_app, until, visible_text
from tui.test_console import select_step

LONG = "x" * 300 + " END-OF-A-LONG-CELL"


async def test_enter_on_a_panel_row_shows_every_cell_whole(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#panel-errors", QueryPanel)
        await until(pilot, lambda: panel.result is not None)
        app.refresher.runner.rows["errors"] = (("error", "n"), ((LONG, 12),))
        await pilot.press("r")
        await until(pilot, lambda: panel.result.rows[0][0] == LONG)
        table = panel.query_one(DataTable)
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        text = str(app.screen.query_one("#detail-text").render())
        assert "END-OF-A-LONG-CELL" in text and "12" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen))


async def test_enter_on_a_step_shows_its_whole_text_and_who_signed(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "Team is ready" in visible_text(app))
        await pilot.pause(0.3)  # the cursor's first move (to the next unsigned step) is done
        await select_step(pilot, app, "ready")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        text = str(app.screen.query_one("#detail-text").render())
        assert "Team is ready" in text and "ops at" in text
