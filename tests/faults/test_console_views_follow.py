"""Every view re-renders or closes on the state it shows. Once, the advance dialog still
offered "Type 10 and press Enter" after the advance had ended, and the journal view missed a
rollback started from inside it."""

from __future__ import annotations

from pathlib import Path

from cutover.record.events import Kind
from cutover.record.journal import Journal
from cutover.tui.screens.journal import JournalScreen
from cutover.tui.screens.moves import AdvanceScreen
from tui.conftest import visible_text
from tui.test_console_postgres import advance_to_canary, console, healthy, moving, sign


async def test_a_finished_advance_asks_for_nothing_any_more(tmp_path: Path, soulprint_dsn: str):
    await healthy(soulprint_dsn)
    app = console(tmp_path, soulprint_dsn)
    sign(app, "prep", "ready", "backup")
    async with app.run_test(size=(100, 30)) as pilot:
        from tui.conftest import until

        await until(pilot, lambda: app.check_action("advance", ()) is True)
        await pilot.press("a")
        await pilot.press(*"10", "enter")
        dialog = await moving(pilot, app, AdvanceScreen)
        await until(pilot, lambda: dialog.done)
        shown = visible_text(app)
        assert "Type 10 and press Enter" not in shown
        assert "advance to 10 % verified" in shown


async def test_the_journal_view_shows_what_is_journaled_while_it_is_open(
    tmp_path: Path, soulprint_dsn: str
):
    await healthy(soulprint_dsn)
    app = console(tmp_path, soulprint_dsn)
    sign(app, "prep", "ready", "backup")
    async with app.run_test(size=(120, 40)) as pilot:
        from tui.conftest import until

        await advance_to_canary(pilot, app)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        other = Journal(app.session.runbook.journal_path, actor="alice", host="jump2")
        other.append(Kind.TRIGGER_RAISED, trigger="complaints", note="3 users wrote in")
        await until(pilot, lambda: "3 users wrote in" in visible_text(app))
        assert isinstance(app.screen, JournalScreen)
