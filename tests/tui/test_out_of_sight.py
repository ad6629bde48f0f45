"""Work out of sight costs nothing (#20): a panel scrolled out of view is neither redrawn
each second nor refilled when its query answers (redrawing a widget out of view made the
compositor lay out the whole screen to find it: bench/garbage.py measures that); it catches
up the moment it scrolls into view."""

from __future__ import annotations

from pathlib import Path

from textual.containers import VerticalScroll
from textual.widgets import DataTable

from cutover.sources.results import QueryResult
from cutover.tui.messages import QueryFinished

from .conftest import Clock, fixed_app, until


async def test_a_panel_out_of_view_waits_and_catches_up_when_scrolled_into_view(
    tmp_path: Path,
):
    clock = Clock()
    app = fixed_app(tmp_path, observed=True, clock=clock)
    async with app.run_test(size=(80, 12)) as pilot:  # the last panel below the fold
        panels = app._parts.panels
        await until(pilot, lambda: any(not p.in_view for p in panels.values()))
        hidden = next(p for p in panels.values() if not p.in_view)
        table = hidden.query_one(DataTable)
        rows_before, subtitle_before = table.row_count, hidden.border_subtitle
        # its query answers with new rows, every second for a while, the clock moving
        qid = hidden.query_def.id
        columns = app.results[qid].columns
        rows = tuple((f"new {i}",) + (None,) * (len(columns) - 1) for i in range(3))
        for _ in range(3):
            clock.advance(seconds=1)
            app.on_query_finished(QueryFinished(QueryResult(qid, columns, rows, ran_at=clock())))
            app.tick()
            await pilot.pause(0.1)
        assert not hidden.in_view
        assert table.row_count == rows_before  # not refilled out of sight
        assert hidden.border_subtitle == subtitle_before  # nor its age redrawn
        assert hidden.result is not None and hidden.result.rows == rows  # but kept
        assert app.results[qid].rows == rows  # and judged as ever: a view, not the data
        # scrolled into view, it shows what came meanwhile
        app.main.query_one("#panels", VerticalScroll).scroll_to_widget(hidden, animate=False)
        await until(pilot, lambda: hidden.in_view and table.row_count == 3)
        assert hidden.border_subtitle != subtitle_before


async def test_a_fetch_that_breaks_is_said_and_its_query_runs_again(tmp_path: Path):
    """A fetch is a plain task now (a worker per fetch left cyclic garbage each second): a
    bug inside one must still reach the screen, turn what reads it UNKNOWN, and not stop
    its query for good."""
    from .conftest import runner_of

    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        runner = runner_of(app)
        await until(pilot, lambda: "success" in app.results)
        answer = runner.answer
        broken = [True]

        def once_broken(query):
            if query.id == "success" and broken[0]:
                broken[0] = False
                raise RuntimeError("a bug in the fetch")
            return answer(query)

        runner.answer = once_broken
        app.refresher.intervals["success"] = 0.2
        app.refresher.fetch("success", force=True)
        # said on its panel, and what reads it is UNKNOWN at once, never left looking fine
        await until(pilot, lambda: "a bug in the fetch" in (app.results["success"].error or ""))
        assert "cutover could not run it (RuntimeError" in app.results["success"].error
        assert app.report.triggers[0].judgement.holds is None
        runs = runner.runs.count("success")
        await until(pilot, lambda: runner.runs.count("success") > runs)  # it runs again
