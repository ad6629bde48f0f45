"""A query nothing reads and nobody sees waits (#20): out of view, a panel that no gate,
trigger or header line reads is not refreshed (neither the database nor the console's loop
works for rows nobody will see); it runs the moment its panel comes back into view. What a
gate, a trigger or the header reads refreshes on its clock wherever its panel is."""

from __future__ import annotations

from pathlib import Path

from .conftest import fixed_app, moved_elsewhere, runner_of, until


async def test_a_panel_nobody_reads_waits_out_of_view_and_runs_when_it_comes_back(
    tmp_path: Path,
):
    app = fixed_app(tmp_path, observed=True)
    async with app.run_test(size=(80, 12)) as pilot:  # errors and share below the fold
        panels = app._parts.panels
        await until(pilot, lambda: not panels["errors"].in_view)
        runs = runner_of(app).runs
        runs.clear()
        for qid in ("errors", "share", "success"):  # their refreshes come due
            app.refresher.fetch(qid)
        await pilot.pause(0.3)
        # errors is read by nothing; share is the header's observed share; success a gate's
        assert "errors" not in runs and "errors" in app.refresher.parked
        assert "share" in runs and "success" in runs
        panels["errors"].scroll_visible(animate=False)
        await until(pilot, lambda: "errors" in runs)  # back in view: it runs at once
        assert "errors" not in app.refresher.parked


async def test_the_operator_asking_for_every_panel_runs_the_ones_out_of_view_too(
    tmp_path: Path,
):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 12)) as pilot:
        await until(pilot, lambda: not app._parts.panels["errors"].in_view)
        runs = runner_of(app).runs
        runs.clear()
        app.refresher.refresh_now()  # r: "refresh every query now"
        await until(pilot, lambda: "errors" in runs)


ERRORS_IN_CANARY = """
[[triggers]]
id = "errors_many"
title = "Errors pile up"
query = "errors"
column = "n"
op = ">"
value = 100
severity = "critical"
stages = ["canary"]
"""


async def test_a_parked_query_the_next_stage_judges_runs_without_being_scrolled_to(
    tmp_path: Path,
):
    # Parked in the prerequisites (nothing there reads it, its panel below the fold), it
    # feeds a trigger live in the canary: moving there must not leave that trigger on rows
    # nobody fetches until someone happens to scroll.
    app = fixed_app(tmp_path, triggers=ERRORS_IN_CANARY)
    async with app.run_test(size=(80, 12)) as pilot:
        await until(pilot, lambda: not app._parts.panels["errors"].in_view)
        runs = runner_of(app).runs
        app.refresher.fetch("errors")  # its refresh comes due
        assert "errors" in app.refresher.parked
        runs.clear()
        moved_elsewhere(app, "prep", "canary", 10)
        await until(pilot, lambda: "errors" in runs)
        assert not app._parts.panels["errors"].in_view  # nobody scrolled to it
        assert "errors" not in app.refresher.parked
