"""A trigger the console cannot evaluate is UNKNOWN, never quiet; a fired one stays on the
banner until fresh data clears it; slowing or pausing a refresh never makes stale data look
fresh, and a pause says how long it has lasted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from textual.widgets import DataTable

from cutover.judge.verdicts import Verdict
from cutover.tui.widgets.query_panel import QueryPanel
from tui.conftest import T0, fixed_app, until, visible_text


def panel_text(app, query_id: str) -> str:
    panel = app.query_one(f"#panel-{query_id}", QueryPanel)
    return str(panel.query_one(".verdicts").render()) + "\n" + str(panel.border_subtitle)


async def test_a_fired_trigger_whose_query_then_fails_stays_on_the_banner(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "‼ CRITICAL TRIGGER FIRED" in visible_text(app))
        app.refresher.runner.errors["success"] = "connection reset by peer"
        await pilot.press("r")
        await until(pilot, lambda: "now unknown" in visible_text(app))
        shown = visible_text(app)
        assert "‼ CRITICAL TRIGGER FIRED: Success below 90 %" in shown  # latched
        assert "FIRED 80 < 90 at 08:59Z; now unknown: query failed: connection reset" in shown
        line = panel_text(app, "success")
        assert "? UNKNOWN trigger success_low (critical)" in line
        assert "quiet" not in line


async def test_a_trigger_that_never_ran_is_unknown_not_quiet(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    app.refresher.runner_factory = lambda: _failing(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "? CRITICAL TRIGGER UNKNOWN" in visible_text(app))
        assert "success_low: UNKNOWN: query failed: permission denied" in visible_text(app)
        line = panel_text(app, "success")
        assert "? UNKNOWN trigger success_low" in line and "quiet" not in line


def _failing(app):
    from tui.conftest import scripted

    runner = scripted(app.clock)
    runner.errors["success"] = "permission denied for table user_profiles"
    return runner


async def test_only_fresh_data_clears_a_fired_banner_and_the_bell_rings_once_per_fire(
    tmp_path: Path,
):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # the terminal bell, counted
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "‼ CRITICAL TRIGGER FIRED" in visible_text(app))
        runner = app.refresher.runner
        runner.errors["success"] = "timeout"
        await pilot.press("r")
        await until(pilot, lambda: "now unknown" in visible_text(app))
        assert rings == [1]  # still the same fire: no second ring
        del runner.errors["success"]
        runner.rows["success"] = (("rate", "total", "stuck"), ((99.5, 1234567, None),))
        await pilot.press("r")
        await until(pilot, lambda: "CRITICAL TRIGGER" not in visible_text(app))
        assert "· quiet trigger success_low" in panel_text(app, "success")
        runner.rows["success"] = (("rate", "total", "stuck"), ((70.0, 1234567, None),))
        await pilot.press("r")
        await until(pilot, lambda: "‼ CRITICAL TRIGGER FIRED" in visible_text(app))
        assert rings == [1, 1]  # a new fire rings again


async def test_slowing_a_gate_query_cannot_make_its_stale_rows_look_fresh(tmp_path: Path):
    now = [T0]
    app = fixed_app(tmp_path, stage="canary")  # gate `success` reads query success (30 s)
    app.clock = lambda: now[0]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.report is not None and app.report.gates[0].judgement.value)
        panel = app.query_one("#panel-success", QueryPanel)
        panel.query_one(DataTable).focus()
        await pilot.press("plus", "plus", "plus")  # every 30 s → 5 min
        assert app.refresher.intervals["success"] == 300
        now[0] = T0 + timedelta(seconds=90)  # three runbook intervals, under one of the new
        await until(pilot, lambda: app.report.gates[0].verdict is Verdict.WAIT)
        await until(pilot, lambda: panel.has_class("-stale"))
        assert "⚠ STALE" in panel.border_subtitle and "every 5m" in panel.border_subtitle


async def test_a_pause_says_how_long_it_has_lasted(tmp_path: Path):
    now = [T0]
    app = fixed_app(tmp_path, stage="canary")
    app.clock = lambda: now[0]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "· quiet trigger success_low" in panel_text(app, "success"))
        await pilot.press("space")
        now[0] = T0 + timedelta(minutes=4, seconds=10)
        await until(pilot, lambda: "⏸ PAUSED 4m 10s" in visible_text(app))
        assert "⏸ paused 4m 10s" in panel_text(app, "errors")
        # and the trigger it can no longer evaluate says so, with what it last knew
        line = panel_text(app, "success")
        assert "? UNKNOWN trigger success_low" in line and "last known quiet" in line
