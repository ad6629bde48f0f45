"""What the console says must mean what it says: an override is marked as one everywhere,
the observed share is rounded, counted, windowed and said to lag, past sign-offs show who
signed, a second visit says so, and the action line names its action once."""

from __future__ import annotations

from pathlib import Path

from cutover.tui.screens.moves import AdvanceScreen
from cutover.tui.screens.signoff import SignOffScreen
from cutover.tui.widgets.header import StatusBar
from cutover.tui.widgets.runbook_pane import RunbookPane
from tui.conftest import fixed_app, moved_elsewhere, until, visible_text


def override_backup(app) -> None:
    app.session.journal.append(
        "signoff",
        stage="prep",
        step="backup",
        visit=1,
        note="restore tested by hand",
        override=True,
        probe="api: error · connection refused",
    )


async def test_an_override_is_marked_in_the_tree_the_advance_dialog_and_the_journal(
    tmp_path: Path,
):
    app = fixed_app(tmp_path)
    override_backup(app)
    app.cstate = app.session.state()[0]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.check_action("advance", ()) is True)
        label = str(app.query_one(RunbookPane)._steps[("prep", "backup")].label)
        assert "⚠ OVERRIDE: restore tested by hand" in label
        await pilot.press("a")
        assert isinstance(app.screen, AdvanceScreen)
        shown = visible_text(app)
        assert "all clear, with 1 override: backup (restore tested by hand)" in shown
        assert "gates: all clear." not in shown
        await pilot.press("escape", "l")
        await pilot.pause(0.1)
        assert "signoff ⚠ OVERRIDE" in visible_text(app)


async def test_the_sign_off_dialog_says_signing_a_failing_probe_is_an_override(tmp_path: Path):
    app = fixed_app(tmp_path, probe=True)  # backup needs probe api: nobody answers
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)
        await until(pilot, lambda: "Sign off as an OVERRIDE" in visible_text(app), timeout=15)
        shown = visible_text(app)
        assert "Enter signs as an OVERRIDE" in shown
        # the probe's lines are lines, not one line strung together with ↵
        lines = [line.strip(" │█") for line in shown.splitlines()]
        assert "↵" not in shown
        assert any(line.startswith("✗ probe api: error") for line in lines)
        assert any(line.startswith("✗ could not connect") for line in lines)


async def test_the_observed_share_is_rounded_counted_windowed_and_said_to_lag(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", observed=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: "seen 0.7 %" in visible_text(app))
        assert "seen 0.7 % of 412 imports, last 15 min; lags the flag" in visible_text(app)
        assert "0.728155" not in visible_text(app)
        # right after a rollback the window still holds traffic from before it
        app.refresher.runner.rows["share"] = (
            ("imports", "v2_imports", "v2_pct"),
            ((411, 184, 44.768856),),
        )
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: app.cstate.stage_id == "prep")
        await pilot.press("escape", "r")
        await until(pilot, lambda: "seen 44.8 %" in visible_text(app))
        shown = visible_text(app)
        assert "set 0 % · read 0 % · seen 44.8 % of 411 imports, last 15 min; lags" in shown


async def test_past_stages_show_who_signed_them(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        pane = app.query_one(RunbookPane)
        for step in ("ready", "backup"):
            label = str(pane._steps[("prep", step)].label)
            assert "— ops 06:00:00Z" in label and label.startswith("✓ "), label


async def test_a_second_visit_to_a_stage_says_so_and_a_first_says_nothing(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary │" in visible_text(app))
        assert "time in this stage" not in visible_text(app) and "visit" not in visible_text(app)
        moved_elsewhere(app, "canary", "prep", 0, kind="rollback")
        await until(pilot, lambda: app.cstate.stage_id == "prep")
        assert "1/3 Prerequisites (2nd time in this stage)" in visible_text(app)
        moved_elsewhere(app, "prep", "canary", 10)
        await until(pilot, lambda: "2/3 Canary (2nd time in this stage)" in visible_text(app))


async def test_the_action_line_names_the_action_once(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        line = str(app.query_one(StatusBar).render()).splitlines()[1]
        assert line.startswith("advance ✗ refused:"), line
