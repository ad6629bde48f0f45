"""Trends in the console: under a panel, each gate's and trigger's value over the hold from
the evidence against its threshold, and the hold as a bar with its restarts; `h` opens the
history of the focused panel's query over the stage and the one before. Every mark is a
glyph, so NO_COLOR loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets import Static

from cutover.record.evidence import GATE, TRIGGER, Evaluation
from cutover.report.timeline import Point
from cutover.tui.screens.history import HistoryScreen
from cutover.tui.trend_line import Axis, chart_rows, hold_bar, sparkline, trend_text

from .conftest import T0, Clock, fixed_app, until, visible_text

START = T0 - timedelta(hours=3)  # when fixed_app's journal entered the canary


def rate_at(minute: int) -> float:
    """The canary's success rate: a WAIT an hour in, a FAIL at 2 h 30 m, fine since."""
    if 150 <= minute <= 160:
        return 85.0
    if 60 <= minute <= 70:
        return 98.0
    return 99.0 + (minute % 3) / 10


def record_evidence(session) -> None:
    """What a watcher recorded every 5 minutes since the canary began."""
    store = session.evidence_store("watch", clock=lambda: T0)
    digest = session.sql_digests()["success"]
    for minute in range(0, 180, 5):
        value, at = rate_at(minute), START + timedelta(minutes=minute)
        verdict = "fail" if value < 95 else "wait" if value < 99 else "pass"
        interval = (value - 0.8, min(100.0, value + 0.5))
        fired = "fired" if value < 90 else "quiet"
        why = f"rate {value:g}"
        store.record(
            [
                Evaluation(GATE, "success", "canary", verdict, value, interval, why, digest, at),
                Evaluation(TRIGGER, "success_low", "canary", fired, value, None, why, digest, at),
            ]
        )
    store.flush()


def trended(tmp_path: Path, **kw):
    app = fixed_app(tmp_path, stage="canary", clock=Clock(T0), hold="2h", **kw)
    record_evidence(app.session)
    return app


async def show_trends(pilot) -> None:
    await pilot.pause(0.3)
    pilot.app.refresh_trends()  # the first read of the evidence, on a thread
    await until(pilot, pilot.app.trends_ready)
    pilot.app.refresh_trends()
    await pilot.pause(0.2)


async def open_history(pilot) -> None:
    await show_trends(pilot)
    await pilot.press("tab")  # from the runbook pane to the first panel's rows
    await pilot.press("h")
    await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen))
    await pilot.pause(0.3)


# -- drawn in text -------------------------------------------------------------------------

AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_a_sparkline_draws_each_column_by_value_and_verdict_and_blanks_the_silence():
    points = [
        Point(AT, 99.0, "pass"),
        Point(AT + timedelta(minutes=1), 85.0, "fail"),
        Point(AT + timedelta(minutes=2), 97.0, "wait"),
        Point(AT + timedelta(minutes=6), 99.0, "pass"),
    ]
    axis = Axis(AT, AT + timedelta(minutes=10), 10)
    line = sparkline(points, axis, ">=", 95, AT + timedelta(minutes=7))
    assert line.plain == "█×▅   █ ··"  # now is the eighth column; dots are still to come
    styles = [str(span.style) for span in line.spans]
    assert "bold red" in styles and "yellow underline" in styles
    # A reading stands until the next one, up to max_gap: then the silence is blank.
    carried = sparkline(points, axis, ">=", 95, AT + timedelta(minutes=7), carry_s=300)
    assert carried.plain == "█×▅▅▅▅██··"
    words = trend_text("success", points, axis, ">=", 95, AT + timedelta(minutes=7))
    assert words.plain.startswith("success      █×▅")
    assert words.plain.endswith(" 99 ≥95")


def test_the_hold_bar_counts_since_the_last_restart_and_marks_every_restart():
    axis = Axis(AT, AT + timedelta(hours=2), 12)
    now = AT + timedelta(hours=1)
    restarts = [AT + timedelta(minutes=10), AT + timedelta(minutes=40)]
    bar = hold_bar(axis, now, AT + timedelta(minutes=40), restarts, 7200, 1200)
    assert bar.plain == "hold         ─↺──↺━━····· 20m of 2h ↺2"


def test_a_chart_marks_the_threshold_and_baseline_where_no_value_is_drawn():
    points = [Point(AT + timedelta(minutes=m), 99.0, "pass") for m in range(0, 4)]
    axis = Axis(AT, AT + timedelta(minutes=8), 8)
    rows = [r.plain for r in chart_rows(points, axis, 4, ">=", 95, baseline=97.0)]
    assert rows[0].startswith("    99 ┤████")
    assert rows[-1] == "    95 ┤████╌╌╌╌"
    assert any("┈" in r for r in rows)


# -- in the console --------------------------------------------------------------------------


async def test_a_panel_shows_its_gate_and_trigger_over_the_hold_with_the_hold_bar(tmp_path):
    app = trended(tmp_path, triggers="")
    async with app.run_test(size=(160, 48)) as pilot:
        await show_trends(pilot)
        text = visible_text(app)
        (gate,) = [line for line in text.splitlines() if "│ success  " in line]
        assert "≥95" in gate and "×" in gate and "·" in gate  # the FAIL, what is to come
        (trigger,) = [line for line in text.splitlines() if "│ success_low " in line]
        assert "<90" in trigger
        (hold,) = [line for line in text.splitlines() if "│ hold    " in line]
        assert "15m of 2h ↺2" in hold and "↺" in hold and "━" in hold


async def test_nothing_is_drawn_from_no_evidence(tmp_path):
    app = fixed_app(tmp_path, stage="canary", clock=Clock(T0), hold="2h")
    async with app.run_test(size=(160, 48)) as pilot:
        await show_trends(pilot)
        assert "│ hold    " not in visible_text(app)


async def test_h_shows_the_history_of_the_focused_panel_at_80x24_without_colour(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("NO_COLOR", "1")
    app = trended(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_history(pilot)
        text = visible_text(app)
        assert "History · Success rate · success" in text
        assert "gate success (canary): rate ≥ 95 · 37 readings · latest 99.5" in text
        assert "95 ┤" in text and "╌" in text  # the threshold, with its value on the scale
        marks = next(line for line in text.splitlines() if "▲" in line)
        assert marks.count("↺") == 2  # the WAIT and the FAIL restarted the hold
        assert "Nov 20 06:00" in text
        assert "× FAIL" in text
        # Every mark the chart draws is in its legend, the UNKNOWN's `?` among them.
        legend = app.screen.query_one("#history-legend", Static).render()
        assert "? UNKNOWN: no value" in str(legend)
        assert "? UNKNOWN: no value" in " ".join(text.split())
        # The FAIL at 85 is a row of crosses at the scale's foot (95, the threshold): the
        # scale spans what passed, so one dip does not flatten the rest.
        assert "×××" in next(line for line in text.splitlines() if "95 ┤" in line)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HistoryScreen))


async def test_h_with_no_panel_focused_says_what_to_do(tmp_path):
    app = trended(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_trends(pilot)
        notes: list[str] = []
        app.say = lambda text, *a, **k: notes.append(text)  # type: ignore[method-assign]
        await pilot.press("h")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, HistoryScreen)
        assert notes == ["focus a panel first (tab), then h shows its history"]


# -- pictures --------------------------------------------------------------------------------


def test_trends_at_160x48(snap_compare, tmp_path: Path):
    assert snap_compare(trended(tmp_path), terminal_size=(160, 48), run_before=show_trends)


def test_history_at_80x24(snap_compare, tmp_path: Path):
    assert snap_compare(trended(tmp_path), terminal_size=(80, 24), run_before=open_history)


async def test_the_console_keeps_only_what_this_stage_and_the_one_before_can_show(tmp_path):
    app = fixed_app(tmp_path, stage="half", clock=Clock(T0), hold="2h")  # canary at T0 - 3 h
    store = app.session.evidence_store("watch", clock=lambda: T0)
    digest = app.session.sql_digests()["success"]
    for hours in (5, 4, 2.5, 1):  # two before the canary began, two since
        at = T0 - timedelta(hours=hours)
        store.record(
            [Evaluation(TRIGGER, "success_low", "prep", "quiet", 99.0, None, "", digest, at)]
        )
        store.flush()
    async with app.run_test(size=(120, 40)) as pilot:
        await show_trends(pilot)
        kept = [p.at for p in app.trend_readings().points(TRIGGER, "success_low")]
        assert T0 - timedelta(hours=2.5) in kept and T0 - timedelta(hours=1) in kept
        assert all(at >= T0 - timedelta(hours=3) for at in kept), kept


def test_trends_at_80x24(snap_compare, tmp_path: Path):
    assert snap_compare(trended(tmp_path), terminal_size=(80, 24), run_before=show_trends)


def test_history_at_160x48(snap_compare, tmp_path: Path):
    assert snap_compare(trended(tmp_path), terminal_size=(160, 48), run_before=open_history)


async def test_a_run_from_a_clock_ahead_does_not_hide_a_silence_from_the_hold_bar(tmp_path):
    app = fixed_app(tmp_path, stage="canary", clock=Clock(T0), hold="2h", triggers="")
    digest = app.session.sql_digests()["success"]

    def passing(by: str, clock: datetime, since: timedelta, until: timedelta) -> None:
        store = app.session.evidence_store(by, clock=lambda: clock)
        at = T0 - since
        while at <= T0 + until:
            store.record(
                [Evaluation(GATE, "success", "canary", "pass", 99.5, None, "", digest, at)]
            )
            at += timedelta(minutes=5)
        store.flush()

    passing("watch", T0, timedelta(hours=3), timedelta(minutes=-90))  # silent for 90 m since
    # A host a day ahead: its run began 85 m ago by its clock and lasts until tomorrow.
    passing("ahead", T0 + timedelta(days=1), timedelta(minutes=85), timedelta(days=1))
    async with app.run_test(size=(160, 48)) as pilot:
        await show_trends(pilot)
        (hold,) = [line for line in visible_text(app).splitlines() if "│ hold    " in line]
        assert "↺" in hold  # the 90 m without an evaluation (max_gap 1 h), as the hold has it


def test_readings_without_a_value_are_marked_not_covered_by_the_last_good_one():
    # The database down for an hour after one PASS: every evaluation UNKNOWN, no value (a
    # NaN or ±Infinity in the evidence reads the same).
    pts = [Point(AT, 99.5, "pass")]
    pts += [Point(AT + timedelta(minutes=m), None, "unknown") for m in range(5, 60, 5)]
    axis = Axis(AT, AT + timedelta(hours=1), 12)
    now = AT + timedelta(minutes=59)
    line = trend_text("success", pts, axis, ">=", 95.0, now, 12, carry_s=3600).plain
    assert line == "success      █??????????? — ≥95"  # not 12 green blocks and "99.5"
    bottom = chart_rows(pts, axis, 3, ">=", 95.0, None, carry_s=3600)[-1].plain
    assert bottom.endswith("█???????????")  # and the history's chart draws it, no crash
