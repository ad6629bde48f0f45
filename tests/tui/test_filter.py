"""`/` narrows what is shown (#21.12): the focused panel's rows, or the panels. A view only:
what is judged stays the same."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from cutover.tui.screens.detail import DetailScreen
from cutover.tui.screens.filter import FilterScreen
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import RunbookPane

from .conftest import fixed_app, until, visible_text


async def test_slash_filters_the_focused_panels_rows_and_enter_opens_the_row_shown(
    tmp_path: Path,
):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#panel-errors", QueryPanel)
        table = panel.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.focus()
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press(*"MARKUP", "enter")  # case ignored; the cell as it reads
        await until(pilot, lambda: table.row_count == 1)
        assert "1 of 2 rows have 'MARKUP'" in visible_text(app)
        assert len(panel.rows_for_export()[1]) == 2  # `e` exports the answer whole
        judged = app.report
        table.focus()
        await pilot.press("enter")  # the detail is of the row shown, not the first fetched
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert "[bold]markup[/bold]" in visible_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen))
        assert app.report == judged  # a view: nothing judged differently
        # an empty filter shows every row again
        table.focus()
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press(*["backspace"] * 6, "enter")
        await until(pilot, lambda: table.row_count == 2)
        assert "rows have" not in visible_text(app)


async def test_slash_from_the_runbook_pane_filters_the_panels(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        errors = app.query_one("#panel-errors", QueryPanel)
        await until(pilot, lambda: errors.query_one(DataTable).row_count == 2)
        app.query_one(RunbookPane).focus()
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press(*"success", "enter")
        await until(pilot, lambda: not errors.display)
        assert app.query_one("#panel-success", QueryPanel).display
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press("escape")  # Esc leaves it as it was
        await until(pilot, lambda: not isinstance(app.screen, FilterScreen))
        assert not errors.display


async def test_ctrl_r_from_inside_the_filter_dialog_opens_the_rollback(tmp_path: Path):
    # Rollback is one key away from anywhere: a half-typed filter does not take it.
    from cutover.tui.screens.moves import RollbackScreen

    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.report is not None)
        app.query_one(RunbookPane).focus()
        await pilot.press("slash", *"succ")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen))
