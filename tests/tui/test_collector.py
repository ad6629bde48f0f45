"""The collector is told what lives as long as the console (tui/collector.py): once, when the
whole screen is built, and only by a console that owns its process."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from cutover.tui import app as app_mod
from cutover.tui import collector

from .conftest import fixed_app, until


async def test_a_console_in_a_terminal_of_its_own_settles_the_collector_once(
    tmp_path: Path, monkeypatch
):
    settled: list[int] = []
    monkeypatch.setattr(collector, "settle", lambda: settled.append(1) or 0)
    monkeypatch.setattr(app_mod, "SETTLE_AFTER_S", 0.05)
    app = fixed_app(tmp_path)
    app.settle_collector = True  # what run_app says
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: settled)
        await pilot.pause(0.5)
        app._mount_the_rest()  # again, as a late answer does: nothing more
        await pilot.pause(0.3)
    assert settled == [1]


async def test_the_collector_is_not_settled_while_a_dialog_is_open(tmp_path: Path, monkeypatch):
    # Its full collection is a long pause: the rollback dialog's y must not land in it.
    settled: list[int] = []
    monkeypatch.setattr(collector, "settle", lambda: settled.append(1) or 0)
    monkeypatch.setattr(app_mod, "SETTLE_AFTER_S", 0.3)
    app = fixed_app(tmp_path, stage="canary")
    app.settle_collector = True
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")  # the rollback dialog, before the screen is settled
        await until(pilot, lambda: len(app.screen_stack) > 1)
        await pilot.pause(1.0)
        assert settled == []
        await pilot.press("escape")
        await until(pilot, lambda: settled)
    assert settled == [1]


async def test_a_console_embedded_in_another_process_leaves_its_collector_alone(
    tmp_path: Path, monkeypatch
):
    settled: list[int] = []
    monkeypatch.setattr(collector, "settle", lambda: settled.append(1) or 0)
    monkeypatch.setattr(app_mod, "SETTLE_AFTER_S", 0.05)
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.results)
        await pilot.pause(0.6)
    assert settled == []


def said_by_a_process(probe: str) -> list[str]:
    """What `probe` prints, run in a process of its own: the collector is the process's."""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_settling_freezes_what_lives_and_leaves_the_full_passes_at_their_pace():
    # In a process of its own: freezing is for the whole process. Full passes made rarer let
    # garbage pile up for each of them to walk (#20): the thresholds stay as they were.
    probe = (
        "import gc\n"
        "from cutover.tui import collector\n"
        "before = gc.get_threshold()\n"
        "frozen = collector.settle()\n"
        "after = gc.get_threshold()\n"
        "print(frozen > 1000, gc.get_freeze_count() == frozen, before == after)\n"
    )
    assert said_by_a_process(probe) == ["True", "True", "True"]


def test_the_collector_is_paused_for_the_start_and_runs_again_when_resumed():
    # run_app pauses it (start-up allocates most of what the console will hold, and each
    # pass over that was in the first full frame's way); what was loaded is frozen.
    probe = (
        "import gc\n"
        "from cutover.tui import collector\n"
        "collector.pause_for_start()\n"
        "paused, frozen = not gc.isenabled(), gc.get_freeze_count()\n"
        "collector.resume()\n"
        "print(paused, frozen > 1000, gc.isenabled())\n"
    )
    assert said_by_a_process(probe) == ["True", "True", "True"]


async def test_a_start_that_never_settles_still_has_the_collector_back_within_its_bound(
    tmp_path: Path, monkeypatch
):
    # The screen is not settled (a dialog open, a query that never answers): the collector
    # must not stay paused for the console's life, or garbage would pile up unbounded.
    settled: list[int] = []
    monkeypatch.setattr(collector, "settle", lambda: settled.append(1) or 0)
    monkeypatch.setattr(app_mod, "SETTLE_AFTER_S", 60)
    monkeypatch.setattr(collector, "PAUSED_AT_MOST_S", 0.2)
    app = fixed_app(tmp_path)
    app.settle_collector = True
    gc.disable()  # as run_app's pause_for_start left it
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.results)
            await until(pilot, gc.isenabled)
            assert settled == []
    finally:
        gc.enable()
