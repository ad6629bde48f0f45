"""A query that finishes while the console exits must not raise: its result arrives after
the screens (or the panel's own lines) are gone, and it is simply dropped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cutover.sources.results import QueryResult
from cutover.tui.messages import QueryFinished
from cutover.tui.widgets.query_panel import QueryPanel
from tui.conftest import T0, fixed_app


def late_result(query_id: str) -> QueryResult:
    return QueryResult(query_id, ("rate",), ((97.0,),), ran_at=T0 + timedelta(seconds=1))


async def test_a_result_arriving_after_the_screens_are_gone_is_dropped(tmp_path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
    # The console has exited: no screen is left. A worker's message delivered now (the
    # order Textual tears down in lets one through) must not touch the screen stack.
    assert not app.screen_stack
    app.on_query_finished(QueryFinished(late_result("success")))
    assert app.results["success"].rows == ((97.0,),)


async def test_a_result_arriving_while_a_panel_is_taken_down_is_dropped(tmp_path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one("#panel-success", QueryPanel)
    # The panel's own lines are removed before the panel itself.
    assert not panel.children
    panel.show_result(late_result("success"))
    panel.show_verdicts([])


async def test_a_query_finishing_after_the_console_closed_is_not_an_error(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("q")
    assert not app.screen_stack  # gone: what a late message meets
    late = QueryResult("success", ("rate", "total", "stuck"), ((70.0, 1, None),), ran_at=T0)
    app.on_query_finished(QueryFinished(late))  # must not raise (it was IndexError)
    assert app.results["success"] is late
