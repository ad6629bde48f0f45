"""A journal edited under a running console: the chain breaks on screen within a poll, even
though no new event arrived (the console asks for the whole state each poll, not only for
events after the last seq), with a banner naming the line; advance, step back and sign-off
are refused, rollback is not."""

from __future__ import annotations

from pathlib import Path

from tui.conftest import fixed_app, until, visible_text


def edit_a_timestamp(journal: Path, line: int) -> None:
    """What the Trust issue's tester did: one hand edit, same length, no new event."""
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b"T06:00:00Z", b"T05:00:00Z", 1)
    journal.write_bytes(b"".join(lines))


async def test_a_journal_edited_under_the_console_breaks_its_chain_on_screen(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", signed=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary" in visible_text(app))
        assert app.cstate.chain is None
        assert "JOURNAL CHAIN BROKEN" not in visible_text(app)
        edit_a_timestamp(app.runbook.journal_path, 2)
        await until(pilot, lambda: app.cstate.chain is not None)
        await until(pilot, lambda: "JOURNAL CHAIN BROKEN" in visible_text(app))
        assert "line 2" in app.cstate.chain.message
        for action in ("advance", "stepback", "signoff"):
            assert app.cstate.chain.message in app.why_not(action), action
            assert app.check_action(action, ()) is None, action  # dimmed, with the reason
        assert app.check_action("rollback", ()) is True  # toward safety: never refused
        await pilot.press("s")
        assert app.screen is app.main  # no sign-off dialog opened
