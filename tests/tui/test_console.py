"""The console driven by keys (Textual's pilot) over small runbooks in tmp_path."""

from __future__ import annotations

import asyncio
import doctest
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widget import Widget
from textual.widgets import DataTable, Input

from cutover.sources.probes import ProbeResult, ProbeStatus
from cutover.tui import hangup, text, time_text
from cutover.tui.screens import moves
from cutover.tui.screens.confirm import ConfirmScreen
from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.journal import JournalScreen
from cutover.tui.screens.moves import AdvanceScreen, RollbackScreen, StepBackScreen
from cutover.tui.screens.signoff import SignOffScreen, probe_text
from cutover.tui.widgets import header
from cutover.tui.widgets.header import StatusBar, StatusHeader, TriggerBanner
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import RunbookPane

from .conftest import T0, fixed_app, runner_of, session_for, until, visible_text


def test_the_screen_helpers_do_what_their_doctests_say():
    for module in (text, header, moves, time_text):
        outcome = doctest.testmod(module)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__


async def test_the_history_of_visits_agrees_with_the_replayed_state(tmp_path: Path):
    from cutover.tui.history import history

    from .conftest import moved_elsewhere

    app = fixed_app(tmp_path, stage="canary")
    moved_elsewhere(app, "canary", "prep", 0, kind="rollback")
    app.session.journal.append(
        "signoff", stage="prep", step="ready", visit=3, note="", override=False, probe=None
    )
    moved_elsewhere(app, "prep", "canary", 10)
    events = app.session.journal.read().events
    state = app.session.state()[0]
    past = history(app.runbook, events)
    assert state.stage_id == "canary" and state.visit == 4
    assert past.times_in("canary") == 2 and past.times_in("prep") == 2
    # prep's latest visit (the 3rd) had only `ready` signed: the first visit's `backup`
    # belongs to an earlier pass and is not shown as if it were this one's
    assert set(past.signoffs["prep"]) == {"ready"}
    assert past.signoffs["prep"]["ready"].visit == 3


async def test_the_history_kept_current_event_by_event_agrees_with_a_whole_read(tmp_path: Path):
    # The console folds only new events into the history (a long journal holds thousands);
    # after every event it must say what one fold of the whole journal says.
    from cutover.tui.history import Folded, history

    from .conftest import moved_elsewhere

    app = fixed_app(tmp_path, stage="canary")
    for visit in (3, 5):
        moved_elsewhere(app, "canary", "prep", 0, kind="rollback")
        app.session.journal.append(
            "signoff", stage="prep", step="ready", visit=visit, note="", override=False, probe=None
        )
        moved_elsewhere(app, "prep", "canary", 10)
    app.session.journal.append(
        "advance.intent",
        action="x",
        from_stage="canary",
        to_stage="half",
        from_percent=10,
        to_percent=50,
        reason="",
    )
    app.session.journal.append("advance.failed", action="x", error="no")  # fmt: skip
    events = app.session.journal.read().events
    folded = Folded(app.runbook)
    for count in range(len(events) + 1):
        assert folded.update(events[:count]) == history(app.runbook, events[:count]), count
    # a journal that starts over (another file) is folded from its first event
    assert folded.update(events[:2]) == history(app.runbook, events[:2])


def screen_text(app) -> str:
    return str(app.query_one(StatusHeader).render()) + "\n" + str(app.query_one(StatusBar).render())


async def select_step(pilot, app, step_id: str) -> None:
    tree = app.query_one(RunbookPane)
    tree.focus()
    node = tree._steps[(app.cstate.stage_id, step_id)]
    tree.move_cursor(node)
    await pilot.pause()


async def test_signing_off_a_step_journals_it(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await select_step(pilot, app, "backup")
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)
        await pilot.press(*"snapshot 42", "enter")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, SignOffScreen)
        events = [e for e in app.session.journal.read().events if e.kind == "signoff"]
        assert events[-1].get("step") == "backup" and events[-1].get("note") == "snapshot 42"
        assert events[-1].get("visit") == 1 and events[-1].actor == "ops"
        assert "backup" in app.cstate.signoffs
        label = str(app.query_one(RunbookPane)._steps[("prep", "backup")].label)
        assert label.startswith("✓ Backup taken") and "ops" in label


async def test_escape_cancels_a_sign_off_without_journaling(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        before = len(app.session.journal.read().events)
        await select_step(pilot, app, "backup")
        await pilot.press("s", "x")
        assert isinstance(app.screen, SignOffScreen)  # the dialog was open, a note typed…
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SignOffScreen)  # … and Escape closed it
        assert len(app.session.journal.read().events) == before


async def test_advance_is_refused_with_the_machines_reason(tmp_path: Path):
    app = fixed_app(tmp_path)  # prep: one of two steps signed
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert app.check_action("advance", ()) is None  # dimmed, not hidden
        assert app.why_not("advance") == "1 sign-off left"
        assert "advance ✗ refused: 1 sign-off left" in screen_text(app)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, AdvanceScreen)
        assert any("1 sign-off left" in str(n.message) for n in app._notifications)


async def test_a_sign_off_from_another_console_shows_within_a_couple_of_seconds(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert "backup" not in app.cstate.signoffs
        other = session_for(app.runbook.path)  # a headless `cutover signoff` elsewhere
        other.journal.append(
            "signoff", stage="prep", step="backup", visit=1, note="", override=False, probe=None
        )
        # "within a couple of seconds": the console polls the journal every second
        await until(pilot, lambda: "backup" in app.cstate.signoffs, timeout=2.5)
        assert app.why_not("advance") == ""
        assert "advance ✓ 0 % → 10 % (Canary)" in screen_text(app)


async def test_a_critical_trigger_raises_a_banner_that_points_at_ctrl_r(tmp_path: Path):
    app = fixed_app(tmp_path, rate=80.0, stage="canary")
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.query_one(TriggerBanner)
        await until(pilot, lambda: banner.display)
        assert banner.display
        shown = str(banner.render())
        assert "‼ CRITICAL TRIGGER FIRED: Success below 90 %" in shown
        assert "ctrl+r" in shown and "nothing rolls back by itself" in shown
        assert app.cstate.percent == 10  # and nothing moved


async def test_a_fired_trigger_at_zero_percent_raises_no_banner(tmp_path: Path):
    app = fixed_app(tmp_path, rate=80.0, stage="prep")
    async with app.run_test(size=(80, 24)) as pilot:
        # once the trigger has been judged on real rows (it fires: 80 < 90) …
        await until(pilot, lambda: app.report is not None and app.report.fired("critical"))
        await pilot.pause(0.05)
        assert not app.query_one(TriggerBanner).display  # … at 0 % it raises no banner


async def test_space_pauses_and_resumes_the_refresh(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        runner = app.refresher.runner
        app.refresher.intervals = dict.fromkeys(app.refresher.intervals, 0.1)
        app.refresher.refresh_now()
        await until(pilot, lambda: len(runner.runs) > 8)  # running on its 0.1 s clock
        await pilot.press("space")
        assert app.refresher.paused and "⏸ PAUSED" in screen_text(app)
        await pilot.pause(0.2)
        count = len(runner.runs)
        await pilot.pause(0.5)
        assert len(runner.runs) == count
        await pilot.press("space")
        assert not app.refresher.paused
        await until(pilot, lambda: len(runner.runs) > count + 4)


async def test_r_refreshes_now_and_plus_minus_move_the_interval_within_bounds(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        runner = app.refresher.runner
        count = len(runner.runs)
        await pilot.press("r")
        await until(pilot, lambda: len(runner.runs) >= count + 2)
        await pilot.pause(0.1)
        assert len(runner.runs) == count + 2  # each query once, no more
        app.query_one("#panel-errors", QueryPanel).query_one(DataTable).focus()
        await pilot.press("plus")
        assert app.refresher.intervals == {"success": 30, "errors": 60}
        for _ in range(20):
            await pilot.press("minus")
        assert app.refresher.intervals["errors"] == 1


async def test_a_refresh_updates_the_table_in_place_and_keeps_the_cursor(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.2)
        panel = app.query_one("#panel-errors", QueryPanel)
        table = panel.query_one(DataTable)
        runner = app.refresher.runner
        runner.rows["errors"] = (("error", "n"), (("a", 1), ("b", 2), ("c", 3)))
        await pilot.press("r")
        await pilot.pause(0.2)
        table.focus()
        table.move_cursor(row=2)
        runner.rows["errors"] = (("error", "n"), (("a", 1), ("b", 2), ("c", 4000)))
        await pilot.press("r")
        await pilot.pause(0.2)
        assert table.cursor_row == 2  # a clear-and-refill would put it back on row 0
        assert str(table.get_cell_at((2, 1))) == "4,000"


async def test_the_help_lists_every_key_and_why_a_dimmed_one_is_dimmed(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("#help-keys").render())
        for key in ("ctrl+r", "a", "b", "s", "space", "r", "l", "?", "q", "z", "e"):
            assert f"\n{key:>6}  " in "\n" + shown or shown.startswith(f"{key:>6}")
        assert "✗ 1 sign-off left" in shown
        assert "✗ this is the first stage" in shown


async def test_readonly_removes_every_changing_action(tmp_path: Path):
    app = fixed_app(tmp_path, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        for action in ("advance", "stepback", "rollback", "signoff"):
            assert app.check_action(action, ()) is False
        keys = {b.binding.key for b in app.screen.active_bindings.values()}
        assert not keys & {"ctrl+r", "a", "b", "s"}
        await select_step(pilot, app, "backup")
        await pilot.press("s", "ctrl+r", "a")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert "READ-ONLY" in screen_text(app)


async def test_the_journal_screen_filters_events(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("l")
        assert isinstance(app.screen, JournalScreen)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 4
        await pilot.press(*"advance")
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("escape")
        assert not isinstance(app.screen, JournalScreen)


async def test_a_query_error_with_markup_and_escapes_is_shown_literally(tmp_path: Path):
    app = fixed_app(tmp_path)
    app.refresher.runner_factory = lambda: _erroring(app)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.3)
        shown = str(app.query_one("#panel-errors .error").render())
        assert shown == "✗ error: syntax error at [red]x[/red] ^[[2J near"
        # the healthy panel beside it goes on
        table = app.query_one("#panel-success", QueryPanel).query_one(DataTable)
        assert str(table.get_cell_at((0, 1))) == "1,234,567"


def _erroring(app):
    from .conftest import scripted

    runner = scripted(app.clock)
    runner.errors["errors"] = "syntax error at [red]x[/red] \x1b[2J near"
    return runner


async def test_zoom_fills_the_screen_with_a_panel_and_restores(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        panel = app.query_one("#panel-errors", QueryPanel)
        panel.query_one(DataTable).focus()
        await pilot.press("z")
        assert app.zoomed is panel and panel.region.height > 14
        assert not app.query_one(RunbookPane).display
        assert not app.query_one("#panel-success").display
        await pilot.press("z")
        assert app.zoomed is None and app.query_one(RunbookPane).display
        assert app.query_one("#panel-success").display


async def test_export_writes_the_focused_panel_as_csv(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        app.query_one("#panel-success", QueryPanel).query_one(DataTable).focus()
        await pilot.press("e")
        files = list((tmp_path / ".cutover" / "exports").glob("success-*.csv"))
        assert len(files) == 1
        assert files[0].read_text().splitlines() == ["rate,total,stuck", "99.5,1234567,"]


async def test_q_quits_at_once_when_nothing_is_in_flight(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_rollback_opens_from_inside_the_sign_off_dialog(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await select_step(pilot, app, "no_complaints")
        await pilot.press("s")
        assert isinstance(app.screen, SignOffScreen)
        assert isinstance(app.screen.focused, Input)
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, RollbackScreen)
        await pilot.press("enter", "escape")  # neither confirms
        assert not isinstance(app.screen, RollbackScreen)
        assert (tmp_path / "flag" / "percent").read_text() == "10\n"
        assert not [e for e in app.session.journal.read().events if e.kind.startswith("rollback")]


async def test_step_back_needs_a_reason_then_goes_to_the_previous_percent(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("b")
        dialog = app.screen
        assert isinstance(dialog, StepBackScreen)
        await pilot.press("enter")
        assert not dialog.started
        await pilot.press(*"memory climbing", "enter")
        await until(pilot, lambda: isinstance(app.screen, StepBackScreen) and app.screen.started)
        dialog = app.screen
        await until(pilot, lambda: dialog.done)
        assert (tmp_path / "flag" / "percent").read_text() == "0\n"
        intent = [e for e in app.session.journal.read().events if e.kind == "stepback.intent"]
        assert intent[0].get("reason") == "memory climbing"
        assert app.cstate.stage_id == "prep"


async def test_quit_asks_while_a_rollback_is_retrying_and_y_stops_it(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    flag_dir = tmp_path / "flag"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        (flag_dir / "percent").unlink()
        flag_dir.rmdir()
        flag_dir.write_text("not a folder")  # every attempt fails; rollback keeps retrying
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: app.move_running("rollback"))
        await pilot.press("escape")  # the dialog closes, the rollback goes on
        assert app.move_running("rollback") and "⟳ rollback in flight" in screen_text(app)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.move_running("rollback") and app.is_running
        await pilot.press("q", "y")
        await pilot.pause(0.2)
    assert app.return_code == 0
    kinds = [e.kind for e in app.session.journal.read().events]
    # Stopped, not done: the intent stands (the reconciler settles it by what the flag reads).
    assert "rollback.intent" in kinds and "rollback.done" not in kinds


async def test_sighup_exits_cleanly(tmp_path: Path):
    app = fixed_app(tmp_path)
    with hangup.handlers(app, grace_s=60):
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            os.kill(os.getpid(), signal.SIGHUP)
            await pilot.pause(0.2)
    assert app.return_code == 129


async def test_the_palette_offers_actions_and_jumps(tmp_path: Path):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        names = [name for name, _, _ in app.palette_actions()]
        assert any(n.startswith("EMERGENCY ROLLBACK") for n in names)
        await pilot.press("ctrl+p", *"jump to query: top", "enter")
        await pilot.pause(0.3)
        assert app.focused_panel() is app.query_one("#panel-errors")
    readonly = fixed_app(tmp_path / "ro", readonly=True)
    async with readonly.run_test(size=(100, 30)) as pilot:
        names = " ".join(name for name, _, _ in readonly.palette_actions())
        assert "ROLLBACK" not in names and "advance" not in names.lower()


async def test_the_header_says_drift_when_the_flag_differs_from_the_stage(tmp_path: Path):
    app = fixed_app(tmp_path)  # prep at 0 %
    (tmp_path / "flag" / "percent").write_text("50\n")  # someone set it by hand
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "⚠ DRIFT: the flag reads 50 % but stage prep runs at 0 %" in text
        (tmp_path / "flag" / "percent").write_text("0\n")
        app.read_flag()
        await pilot.pause(0.3)
        assert "DRIFT" not in screen_text(app)


async def test_an_idle_console_does_not_repaint_its_panels_every_tick(tmp_path: Path, monkeypatch):
    # Over SSH every repaint is bytes on the wire: with nothing changing (a frozen clock,
    # the same rows), the once-a-second tick must not redraw any panel.
    app = fixed_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        repaints = []
        original = Widget.refresh

        def counting(self, *args, **kwargs):
            # a panel, or anything inside one (its verdict lines, its table)
            if isinstance(self, QueryPanel) or any(
                isinstance(a, QueryPanel) for a in self.ancestors
            ):
                repaints.append(self)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Widget, "refresh", counting)
        for _ in range(3):
            app.tick()
            await pilot.pause(0.05)
        assert repaints == []


def test_multi_line_probe_output_is_shown_as_lines():
    result = ProbeResult(
        "api",
        ProbeStatus.FAIL,
        "http://rlm/health",
        503,
        ("✗ body says:\nprocessors: 0\nqueue: stuck",),
        (),
        datetime(2026, 11, 20, tzinfo=UTC),
        0.1,
    )
    text = str(probe_text(result))
    assert "↵" not in text
    assert "\nprocessors: 0\nqueue: stuck" in text


async def test_a_hold_past_its_end_says_met_not_elapsed_time(tmp_path: Path):
    from cutover.record.evidence import GATE

    from .conftest import Clock, watched

    clock = Clock(T0 + timedelta(hours=30))
    app = fixed_app(tmp_path, stage="canary", clock=clock)  # entered at T0 - 3 h, hold 24 h
    watched(app.session, GATE, "success", "pass", T0 - timedelta(hours=3), clock.now)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "hold ✓ 1d met" in visible_text(app))
        assert " of 1d" not in visible_text(app)


async def test_jumping_to_a_panel_not_added_yet_adds_it_and_goes_there(tmp_path: Path, monkeypatch):
    # The palette can name a panel below the first screen in the console's first seconds,
    # before it is added: that raised NoMatches (a crash) instead of going there.
    from cutover.tui import app as app_mod

    monkeypatch.setattr(
        app_mod.CutoverApp,
        "_panels_first",
        lambda self: [next(iter(self.runbook.queries.values()))],
    )
    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)
    app = fixed_app(tmp_path)
    # The first screen's answer held: once it comes, the rest are added anyway (a loaded
    # machine let it come before the jump, and there was nothing left to test).
    runner, release = runner_of(app), asyncio.Event()
    answer = runner.answer

    async def held(query, *args):
        await release.wait()
        return answer(query)

    runner.run = held  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        assert "errors" not in {p.query_def.id for p in app.query(QueryPanel)}
        app.jump_to_query("errors")
        await until(
            pilot,
            lambda: (
                app.focused is not None
                and any(
                    isinstance(a, QueryPanel) and a.query_def.id == "errors"
                    for a in app.focused.ancestors
                )
            ),
        )
