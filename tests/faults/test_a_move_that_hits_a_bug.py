"""A move that fails in cutover's own code (not a refusal, not the platform) says it is a
bug and where the operator goes next, in the dialog and the toast: never a bare
`KeyError: 'percent'` that reads like the platform's answer."""

from __future__ import annotations

from pathlib import Path

from cutover.traffic.flags.base import FlagState, Progress
from cutover.traffic.flags.file import FileFlag
from cutover.tui.screens.moves import RollbackScreen
from tui.conftest import fixed_app, until, visible_text


class FlagWithABug(FileFlag):
    """Reads as the file flag does; setting it fails as a bug in cutover would."""

    async def set(self, percent: int, progress: Progress = print) -> FlagState:
        raise KeyError("percent")


async def test_a_rollback_that_hits_a_bug_says_so_and_where_to_roll_back_from(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", flag=FlagWithABug(tmp_path / "flag" / "percent"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary" in visible_text(app))
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
        shown = " ".join(visible_text(app).split())
        assert "rollback failed: unexpected KeyError: 'percent' (a bug in cutover" in shown
        assert "`cutover rollback` rolls back from there" in shown
