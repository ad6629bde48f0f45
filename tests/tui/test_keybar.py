"""The keys line: rebuilt only when what it shows changed, and then at once."""

from __future__ import annotations

from pathlib import Path

from textual.widgets._footer import FooterKey

from cutover.tui.screens.help import HelpScreen
from cutover.tui.widgets.keybar import KeyBar

from .conftest import fixed_app, until


def keys_of(screen) -> list[FooterKey]:
    return list(screen.query_one(KeyBar).query(FooterKey))


async def test_opening_and_closing_the_help_rebuilds_no_keys(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: keys_of(app.main))
        await pilot.pause(0.3)
        console_keys = keys_of(app.main)
        help_keys = None
        for _ in range(3):
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await until(pilot, lambda: keys_of(app.screen))
            await pilot.pause(0.2)
            if help_keys is None:
                help_keys = keys_of(app.screen)
            assert keys_of(app.screen) == help_keys  # the very same widgets
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
            await pilot.pause(0.2)
            assert keys_of(app.main) == console_keys


async def test_a_key_dimmed_by_a_missing_sign_off_lights_up_when_it_is_signed(tmp_path: Path):
    app = fixed_app(tmp_path)  # the prerequisites' backup step is not signed: no advance
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: keys_of(app.main))

        def advance_dimmed() -> bool | None:
            # None while the footer is being rebuilt (its keys not mounted yet)
            found = [k for k in keys_of(app.main) if k.action == "advance"]
            return found[0].has_class("-disabled") if found else None

        await until(pilot, lambda: advance_dimmed() is True)
        app.session.journal.append(  # another console signs it
            "signoff", stage="prep", step="backup", visit=1, note="", override=False, probe=None
        )
        await until(pilot, lambda: advance_dimmed() is False)
