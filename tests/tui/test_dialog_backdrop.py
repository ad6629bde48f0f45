"""A dialog hides the console behind it: its own copies of the live lines say what must
always be seen, and what the console behind it redraws is not drawn again under the dialog.

A translucent backdrop blended every cell of the whole console into each frame of the dialog,
and again for every change behind it (each panel's answer every second): opening the help
cost about twice its drawing, and every frame while a dialog was open paid for the console
behind it as well."""

from __future__ import annotations

from pathlib import Path

from cutover.tui.screens.help import HelpScreen
from cutover.tui.widgets.query_panel import RowsTable

from .conftest import fixed_app, set_rate, until


async def test_what_changes_behind_an_open_dialog_is_not_drawn(tmp_path: Path, monkeypatch):
    app = fixed_app(tmp_path, stage="canary")
    drawn: list[int] = []
    render_line = RowsTable.render_line

    def counted(self, y: int):
        drawn.append(y)
        return render_line(self, y)

    monkeypatch.setattr(RowsTable, "render_line", counted)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.3)
        panel = app.main.query_one("#panel-success")
        drawn.clear()
        for rate in (97.0, 96.0, 95.5):  # the panel's rows change behind the help
            set_rate(app, rate)
            app.refresher.refresh_now()
            await until(pilot, lambda r=rate: panel.good and panel.good.rows[0][0] == r)
            await pilot.pause(0.2)
        assert drawn == []
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.pause(0.3)
        assert drawn  # back in view, its new rows are drawn
