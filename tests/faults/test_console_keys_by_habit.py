"""Keys by habit (k9s, lazygit, htop): j/k move, F1 is help, l is the log; the palette offers
cutover's commands, not Textual's stock theme, screenshot and "quit as soon as possible"."""

from __future__ import annotations

from pathlib import Path

from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.journal import JournalScreen
from cutover.tui.widgets.runbook_pane import RunbookPane
from tui.conftest import fixed_app, until, visible_text


async def test_j_k_f1_l_and_a_palette_of_cutovers_own(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Prerequisites" in visible_text(app))
        pane = app.query_one(RunbookPane)
        pane.focus()
        pane.move_cursor(pane._stages["prep"])
        await pilot.pause()
        start = pane.cursor_line
        await pilot.press("j")
        assert pane.cursor_line == start + 1
        await pilot.press("k")
        assert pane.cursor_line == start
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        await pilot.press(*"them")
        await pilot.pause(0.5)
        shown = visible_text(app)
        assert "Change the current theme" not in shown and "Theme" not in shown
