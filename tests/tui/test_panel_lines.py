"""A panel's error line and truncation note are mounted the first time they have something to
say (#20: fewer widgets to style and lay out on the first screen), and then behave as before."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Static

from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui.widgets.query_panel import QueryPanel

from .conftest import T0, until

QUERY = Query(id="errors", title="Top errors", file=Path("errors.sql"), statement=1, refresh_s=30)
GOOD = QueryResult("errors", ("error", "n"), (("timeout", 12),), T0)


class OnePanel(App[None]):
    def compose(self) -> ComposeResult:
        yield QueryPanel(QUERY)


def lines(panel: QueryPanel) -> dict[str, Static]:
    return {name: w for name in ("error", "truncated") for w in panel.query(f".{name}")}


async def test_the_error_line_and_the_note_come_when_needed_and_stay_in_place():
    app = OnePanel()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(QueryPanel)
        panel.show_result(GOOD)
        await until(pilot, lambda: panel.table.row_count == 1)
        assert lines(panel) == {}  # nothing to say: not there at all

        panel.show_result(QueryResult("errors", ran_at=T0, error="relation does not exist"))
        await pilot.pause()
        error = lines(panel)["error"]
        assert error.display and "✗ error: relation does not exist" in str(error.render())
        assert panel.has_class("-failed")
        assert list(panel.children).index(error) < list(panel.children).index(panel.table)

        cut = QueryResult("errors", GOOD.columns, GOOD.rows, T0, truncated=True)
        panel.show_result(cut)
        await pilot.pause()
        found = lines(panel)
        assert not found["error"].display and not panel.has_class("-failed")
        note = found["truncated"]
        assert note.display and "first 1 of ≥ 2 rows" in str(note.render())
        assert list(panel.children).index(note) > list(panel.children).index(panel.table)

        panel.show_result(GOOD)  # whole again: the note goes, no second line is mounted
        await pilot.pause()
        assert not lines(panel)["truncated"].display
        assert len(panel.query(".truncated")) == len(panel.query(".error")) == 1
