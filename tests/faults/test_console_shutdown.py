"""A query that finishes while the console is closing must not crash it on the way out."""

from __future__ import annotations

from pathlib import Path

from cutover.results import QueryResult
from cutover.tui.messages import QueryFinished
from tui.conftest import T0, fixed_app


async def test_a_query_finishing_after_the_console_closed_is_not_an_error(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("q")
    assert not app.screen_stack  # gone: what a late message meets
    late = QueryResult("success", ("rate", "total", "stuck"), ((70.0, 1, None),), ran_at=T0)
    app.on_query_finished(QueryFinished(late))  # must not raise (it was IndexError)
    assert app.results["success"] is late
