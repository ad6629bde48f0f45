"""The header, the trigger banner and the gates/action line stay on screen and live under
every dialog, in zoom and at 80×24: what the operator reads must never be a frozen picture."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.moves import RollbackScreen
from tui.conftest import T0, fixed_app, until, visible_text


async def test_a_rollback_opened_from_help_shows_the_new_stage_while_its_dialog_is_open(
    tmp_path: Path,
):
    now = [T0]
    app = fixed_app(tmp_path, stage="canary")
    app.clock = lambda: now[0]
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary" in visible_text(app))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
        assert app.cstate.stage_id == "prep"
        # The dialog is still open; the header behind it must already say where traffic is.
        await until(pilot, lambda: "1/3 Prerequisites" in visible_text(app))
        shown = visible_text(app)
        assert "set 0 %" in shown and "2/3 Canary" not in shown


async def test_the_hold_keeps_counting_under_a_dialog(tmp_path: Path):
    now = [T0]
    app = fixed_app(tmp_path, stage="canary")  # entered 3 h before T0, a 24 h hold
    app.clock = lambda: now[0]
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "hold 21h left of 1d" in visible_text(app))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        now[0] = T0 + timedelta(hours=2)
        await until(pilot, lambda: "hold 19h left of 1d" in visible_text(app))
