"""Pixel-stable pictures of the console: a fixed clock, scripted rows, fixed journal times."""

from __future__ import annotations

from pathlib import Path

from .conftest import fixed_app


async def settle(pilot) -> None:
    await pilot.pause(0.3)


def test_main_screen_at_80x24(snap_compare, tmp_path: Path):
    assert snap_compare(fixed_app(tmp_path), terminal_size=(80, 24), run_before=settle)


def test_main_screen_at_160x48_with_a_fired_trigger(snap_compare, tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle)


def test_help_screen(snap_compare, tmp_path: Path):
    async def open_help(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app(tmp_path), terminal_size=(100, 40), run_before=open_help)


def test_advance_dialog(snap_compare, tmp_path: Path):
    async def open_advance(pilot) -> None:
        await settle(pilot)
        await pilot.press("a")
        await pilot.press("1")
        await pilot.pause(0.1)

    app = fixed_app(tmp_path, signed=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_advance)


def test_rollback_dialog(snap_compare, tmp_path: Path):
    async def open_rollback(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await pilot.pause(0.1)

    app = fixed_app(tmp_path, stage="canary", rate=80.0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_rollback)
