"""The header, the trigger banner and the gates/action line stay on screen and live under
every dialog, in zoom and at 80×24: what the operator reads must never be a frozen picture."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from textual.widgets import DataTable

from cutover.record.evidence import GATE
from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.moves import AdvanceScreen, RollbackScreen
from cutover.tui.screens.signoff import SignOffScreen
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import RunbookPane
from tui.conftest import (
    T0,
    Clock,
    evaluate,
    fixed_app,
    moved_elsewhere,
    session_for,
    until,
    visible_text,
    watched,
)


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


async def test_the_hold_keeps_counting_under_dialogs(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)  # entered 3 h before T0, 24 h hold
    # the watcher kept evidence all along (and keeps it for the next two hours)
    watched(app.session, GATE, "success", "pass", T0 - timedelta(hours=3), T0)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        await pilot.press("question_mark", "ctrl+r")  # the rollback dialog over the help
        assert isinstance(app.screen, RollbackScreen)
        watched(app.session, GATE, "success", "pass", T0, T0 + timedelta(hours=2))
        evaluate(app, clock, hours=2)
        await until(pilot, lambda: "success PASS for 5h of 1d" in visible_text(app))


async def test_zoom_keeps_the_header_banner_and_action_line(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)  # the critical trigger fires
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "CRITICAL TRIGGER FIRED" in visible_text(app))
        app.query_one("#panel-errors", QueryPanel).query_one(DataTable).focus()
        await pilot.press("z")
        await pilot.pause(0.1)
        shown = visible_text(app)
        assert "Top errors" in shown and "Success rate" not in shown  # zoomed…
        assert "‼ CRITICAL TRIGGER FIRED: Success below 90 %" in shown  # …banner still up
        assert "2/3 Canary" in shown and "advance ✗ refused" in shown


async def test_every_key_that_matters_is_on_the_key_bar_at_80x24(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "^r ROLLBACK" in visible_text(app))
        keys = [line for line in visible_text(app).splitlines() if line.strip()][-1]
        for key, what in (("^r", "ROLLBACK"), ("a", "advance"), ("s", "sign")):
            assert f"{key} {what}" in keys, keys
        for key, what in (("l", "journal"), ("?", "help"), ("q", "quit")):
            assert f"{key} {what}" in keys, keys


async def test_the_rollback_dialog_stops_asking_for_y_once_verified(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("ctrl+r")
        assert "Press y to roll back now" in visible_text(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
        await pilot.pause(0.1)
        shown = visible_text(app)
        assert "✓ rollback to 0 % verified" in shown
        assert "Press y" not in shown and "y roll back now" not in shown


async def test_a_sign_off_dialog_closes_when_another_console_moves_the_stage(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.2)
        await select(pilot, app, "canary", "no_complaints")
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)
        await pilot.press(*"all quiet")
        moved_elsewhere(app, "canary", "prep", 0, kind="rollback")  # another console
        await until(pilot, lambda: not isinstance(app.screen, SignOffScreen))
        await until(pilot, lambda: said(app, "nothing was signed"))
        signed = [e for e in app.session.journal.read().events if e.kind == "signoff"]
        assert all(e.get("step") != "no_complaints" for e in signed)


async def test_an_advance_dialog_closes_when_the_stage_changes_under_it(tmp_path: Path):
    app = fixed_app(tmp_path, signed=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.check_action("advance", ()) is True)
        await pilot.press("a", "1")
        assert isinstance(app.screen, AdvanceScreen)
        moved_elsewhere(app, "prep", "canary", 10)  # someone else advanced meanwhile
        await until(pilot, lambda: not isinstance(app.screen, AdvanceScreen))
        assert app.cstate.stage_id == "canary"
        await until(pilot, lambda: said(app, "nothing was moved"))
        assert (tmp_path / "flag" / "percent").read_text() == "10\n"  # not 50


async def test_help_keeps_its_reasons_current_while_open(tmp_path: Path):
    app = fixed_app(tmp_path)  # prep, one sign-off left
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        assert "✗ 1 sign-off left" in visible_text(app)
        other = session_for(app.runbook.path)
        other.journal.append(
            "signoff", stage="prep", step="backup", visit=1, note="", override=False, probe=None
        )
        await until(pilot, lambda: "✗ 1 sign-off left" not in visible_text(app))
        assert isinstance(app.screen, HelpScreen)
        assert "advance ✓ 0 % → 10 % (Canary)" in visible_text(app)


async def select(pilot, app, stage: str, step: str) -> None:
    tree = app.query_one(RunbookPane)
    tree.focus()
    await pilot.pause()
    tree.move_cursor(tree._steps[(stage, step)])
    await pilot.pause()


def said(app, words: str) -> bool:
    """A notification with these words has reached the operator."""
    return any(words in str(n.message) for n in app._notifications)
