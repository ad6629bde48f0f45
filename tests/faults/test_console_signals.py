"""SIGTERM and SIGHUP in the console (the pilot, the real handlers): an emergency rollback in
flight holds the exit until it ends; a second SIGTERM still ends it; nothing else holds it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from cutover.tui import hangup
from cutover.tui.screens.moves import RollbackScreen
from tui.conftest import fixed_app, until


def break_the_flag(folder: Path) -> None:
    """Every write of the file flag fails from now on: a rollback keeps retrying."""
    flag_dir = folder / "flag"
    (flag_dir / "percent").unlink()
    flag_dir.rmdir()
    flag_dir.write_text("not a folder")


async def test_sigterm_waits_for_the_rollback_in_flight_and_a_second_sigterm_ends_it(
    tmp_path,
):
    app = fixed_app(tmp_path, stage="canary")
    with hangup.handlers(app, grace_s=60):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            break_the_flag(tmp_path)
            await pilot.press("ctrl+r", "y")
            await until(pilot, lambda: app.move_running("rollback"))
            os.kill(os.getpid(), signal.SIGTERM)
            await until(pilot, lambda: app.leaving_code == 143)
            await pilot.pause(0.3)
            assert app.is_running and app.move_running("rollback")  # it goes on
            assert isinstance(app.screen, RollbackScreen)
            os.kill(os.getpid(), signal.SIGTERM)
            await until(pilot, lambda: not app.is_running)
    assert app.return_code == 143
    kinds = [e.kind for e in app.session.journal.read().events]
    assert kinds[-1] != "rollback.done"


async def test_a_rollback_that_finishes_after_sighup_is_journaled_then_the_console_exits(
    tmp_path,
):
    app = fixed_app(tmp_path, stage="canary")
    with hangup.handlers(app, grace_s=60):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            break_the_flag(tmp_path)
            await pilot.press("ctrl+r", "y")
            await until(pilot, lambda: app.move_running("rollback"))
            os.kill(os.getpid(), signal.SIGHUP)
            await until(pilot, lambda: app.leaving_code == 129)
            assert app.is_running and app.move_running("rollback")
            (tmp_path / "flag").unlink()  # the flag works again: the next attempt lands
            (tmp_path / "flag").mkdir()
            await until(pilot, lambda: not app.is_running, 30)
    assert app.return_code == 129
    kinds = [e.kind for e in app.session.journal.read().events]
    assert kinds[-1] == "rollback.done"
    assert (tmp_path / "flag" / "percent").read_text() == "0\n"


async def test_sigterm_with_no_rollback_in_flight_exits_143_at_once(tmp_path):
    app = fixed_app(tmp_path, stage="canary")
    with hangup.handlers(app, grace_s=60):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            await pilot.press("ctrl+r")  # the dialog open, not confirmed: nothing in flight
            os.kill(os.getpid(), signal.SIGTERM)
            await until(pilot, lambda: not app.is_running)
    assert app.return_code == 143
    assert "rollback.intent" not in [e.kind for e in app.session.journal.read().events]
