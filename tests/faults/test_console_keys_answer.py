"""Every key answers: a refused one says why instead of doing nothing, Ctrl-C quits as the
README says, the first Tab stop is one the operator can see, and `s` signs the step the
cursor shows even after the stage changed under it."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import DataTable

from cutover.tui.screens.confirm import ConfirmScreen
from cutover.tui.screens.moves import RollbackScreen
from cutover.tui.screens.signoff import SignOffScreen
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import RunbookPane
from tui.conftest import fixed_app, moved_elsewhere, until


def said(app, words: str) -> bool:
    return any(words in str(n.message) for n in app._notifications)


async def test_ctrl_r_at_zero_percent_says_why_nothing_happens(tmp_path: Path):
    app = fixed_app(tmp_path)  # prep: 0 %, and the flag reads 0
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.flag_state is not None)
        await pilot.press("ctrl+r")
        # Either the dialog opens (and says the flag already reads 0 %), or a notice says
        # why it does not: never nothing at all.
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, RollbackScreen)
                or said(app, "rollback refused: traffic is already at 0 %")
            ),
        )


async def test_ctrl_r_in_a_read_only_console_says_why(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: said(app, "rollback refused: read-only console"))
        assert app.screen is app.screen_stack[0]


async def test_ctrl_c_quits_like_q(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_c_asks_first_while_a_rollback_is_in_flight(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    flag_dir = tmp_path / "flag"
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        (flag_dir / "percent").unlink()
        flag_dir.rmdir()
        flag_dir.write_text("not a folder")  # every attempt fails; rollback keeps retrying
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: app.move_running("rollback"))
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+c")  # a second one is not an answer, nor a second question
        assert isinstance(app.screen, ConfirmScreen)
        assert sum(isinstance(s, ConfirmScreen) for s in app.screen_stack) == 1
        await pilot.press("n")
        assert app.is_running and app.move_running("rollback")
        await pilot.press("ctrl+c", "y")
        await pilot.pause(0.2)
    assert app.return_code == 0


async def test_every_tab_stop_is_a_widget_that_shows_its_focus(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.focused, RunbookPane)
        await pilot.press("tab")
        focused = app.focused
        assert isinstance(focused, DataTable), focused  # not the invisible scroll container
        panel = focused.parent
        assert isinstance(panel, QueryPanel) and panel.has_pseudo_class("focus-within")


async def test_s_signs_the_step_the_cursor_shows_after_the_stage_changed(tmp_path: Path):
    app = fixed_app(tmp_path, signed=True)  # every prep step signed: cursor on prep's row
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        moved_elsewhere(app, "prep", "canary", 10)  # another console advanced
        await until(pilot, lambda: app.cstate.stage_id == "canary")
        pane = app.query_one(RunbookPane)
        await until(pilot, lambda: pane.cursor_node.data.stage == "canary")
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)
        assert app.screen.step.id == "no_complaints"


async def test_s_on_a_past_stages_step_points_at_the_current_one(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        pane = app.query_one(RunbookPane)
        pane._stages["prep"].expand()
        await pilot.pause()
        pane.move_cursor(pane._steps[("prep", "backup")])
        await pilot.pause()
        await pilot.press("s")
        await until(pilot, lambda: said(app, "press s again"))
        await until(pilot, lambda: pane.cursor_node.data.step == "no_complaints")
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)


async def test_s_pressed_before_the_first_frame_settles_opens_the_signoff(tmp_path: Path):
    """An operator (or tmux send-keys) pressing s the moment the console is drawn, before
    anything after its first refresh has run: s signs the current stage's next step at once,
    never 'press s again' for a cursor the console had not placed yet."""
    app = fixed_app(tmp_path)
    app.__class__ = type("KeyAtMount", (type(app),), {"on_mount": _s_at_mount})
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SignOffScreen) or said(app, "again"))
        assert isinstance(app.screen, SignOffScreen), [n.message for n in app._notifications]
        assert app.screen.step.id == "backup"  # prep's first unsigned step


def _s_at_mount(app) -> None:
    # Queued behind the console's own on_mount (a subclass's handler runs first), ahead of
    # its after-refresh callbacks: the key as it arrives from a fast terminal.
    app.post_message(events.Key("s", "s"))
