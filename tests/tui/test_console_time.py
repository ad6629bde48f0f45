"""Time in the console, with a clock the test moves: the hold counted over the evidence
(the watcher's and the console's own), restarting on a FAIL, a WAIT or a gap and saying why;
a gap accepted from the console; a trigger pending on `for` then firing; a high trigger's
deadline; manual triggers raised and cleared with a note; the end of the cutover."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cutover.record.events import Kind
from cutover.record.evidence import GATE, TRIGGER
from cutover.tui.screens.moves import AdvanceScreen
from cutover.tui.screens.note import NoteScreen
from cutover.tui.widgets.runbook_pane import RunbookPane

from .conftest import (
    T0,
    TIME_TRIGGERS,
    Clock,
    evaluate,
    fixed_app,
    runner_of,
    set_rate,
    until,
    visible_text,
    watched,
)

ENTRY = T0 - timedelta(hours=3)  # when fixed_app's cutover entered the canary


def journaled(app, kind: Kind) -> list:
    return [e for e in app.session.journal.read().events if e.kind == kind]


def pane_text(app) -> str:
    """Every line of the runbook pane, whole (the pane is narrower than its lines)."""
    pane = app.query_one(RunbookPane)
    nodes = [*pane._stages.values(), *pane._triggers.values()]
    return "\n".join(str(node.label) for node in nodes)


async def point_at_trigger(pilot, app, trigger_id: str) -> None:
    """The cursor on a trigger, once the console has put it on the next step at start (which
    it does after its first paint: later on a busy machine, and it would move it back)."""
    pane = app.query_one(RunbookPane)
    await until(pilot, lambda: pane.selected_step() is not None)
    pane.point_at_trigger(trigger_id)
    await until(pilot, lambda: pane.selected_trigger() == trigger_id)


async def test_the_hold_counts_the_watchers_evidence_and_then_the_consoles_own(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    watched(app.session, GATE, "success", "pass", ENTRY, T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        for _ in range(3):
            evaluate(app, clock, minutes=20)
        await until(pilot, lambda: "success PASS for 4h of 1d" in visible_text(app))
        assert "● 10 % Canary · success PASS for 4h of 1d" in pane_text(app)
        assert "20h of hold left" in visible_text(app)  # the advance line says what is left
        assert "restarted" not in visible_text(app)
    # what the console evaluated is in the evidence file now (flushed on exit)
    from cutover.record.evidence import read_evidence

    mine = [r for r in read_evidence(app.session.evidence_path).runs if r.by == "console"]
    assert {(r.what, r.name) for r in mine} >= {(GATE, "success"), (TRIGGER, "success_low")}
    assert max(r.last for r in mine) == T0 + timedelta(hours=1)


async def test_a_fail_restarts_the_hold_and_the_header_says_when_and_why(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    watched(app.session, GATE, "success", "pass", ENTRY, T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        set_rate(app, 80.0)
        evaluate(app, clock, minutes=1)
        await until(pilot, lambda: "restarted 09:01Z after success: FAIL" in visible_text(app))
        assert "held 0s of 1d" in visible_text(app)
        set_rate(app, 99.5)
        evaluate(app, clock, minutes=10)
        evaluate(app, clock, minutes=10)
        await until(pilot, lambda: "success PASS for 10m of 1d" in visible_text(app))
        # still saying why the count is short
        assert "restarted 09:01Z after success: FAIL (80 < 95)" in visible_text(app)


async def test_a_wait_restarts_the_hold(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    watched(app.session, GATE, "success", "pass", ENTRY, T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        runner_of(app).errors["success"] = 'relation "imports" does not exist'
        evaluate(app, clock, minutes=1)
        await until(pilot, lambda: "restarted 09:01Z after success: WAIT" in visible_text(app))
        assert "held 0s of 1d" in visible_text(app)


async def test_data_going_stale_is_recorded_and_restarts_the_hold(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    watched(app.session, GATE, "success", "pass", ENTRY, T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        clock.advance(minutes=2)  # no answer for two intervals: the gate waits
        await until(pilot, lambda: "after success: WAIT (stale" in visible_text(app))
        assert "held 0s of 1d" in visible_text(app)


async def test_a_paused_console_records_nothing_while_the_watcher_keeps_the_hold(
    tmp_path: Path,
):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    # the watcher keeps evaluating, whatever the console does
    watched(app.session, GATE, "success", "pass", ENTRY, T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        await pilot.press("space")  # paused: the console's own data goes stale…
        clock.advance(minutes=30)
        watched(app.session, GATE, "success", "pass", T0 + timedelta(minutes=5), clock())
        await until(pilot, lambda: "STALE" in visible_text(app) or "stale" in visible_text(app))
        await until(pilot, lambda: "success PASS for 3h 30m of 1d" in visible_text(app))
        assert "restarted" not in visible_text(app)  # …which is no evidence against the hold
        mine = [r for r in app.evidence.runs() if r.by == "console"]
        assert {r.verdict for r in mine if r.what == GATE} == {"pass"}


async def test_a_gap_restarts_the_hold_and_g_accepts_it_with_a_note(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock)
    watched(app.session, GATE, "success", "pass", ENTRY, ENTRY + timedelta(minutes=50))
    watched(app.session, GATE, "success", "pass", T0 - timedelta(minutes=40), T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 40m of 1d" in visible_text(app))
        assert "restarted 08:20Z after success: a 1h 30m gap (no evaluation)" in visible_text(app)
        await pilot.press("g")
        assert isinstance(app.screen, NoteScreen)
        assert "06:50–08:20Z" in visible_text(app)
        await pilot.press("enter")  # a note is required
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"jump host rebooted", "enter")
        await until(pilot, lambda: not isinstance(app.screen, NoteScreen))
        await until(pilot, lambda: "success PASS for 3h of 1d" in visible_text(app))
        assert "gap 06:50–08:20Z accepted by ops: jump host rebooted" in visible_text(app)
        accepted = journaled(app, Kind.GAP_ACCEPTED)
        assert len(accepted) == 1
        assert accepted[0].get("note") == "jump host rebooted"
        assert accepted[0].get("gap_start") == "2026-11-20T06:50:00Z"
        assert accepted[0].get("gap_end") == "2026-11-20T08:20:00Z"
        # nothing left to accept: g is dimmed and says why
        assert app.check_action("accept_gap", ()) is None
        assert app.why_not("accept_gap") == "no gap in the evidence restarted the hold"


async def test_a_trigger_with_for_is_pending_then_fires(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, rate=96.0, triggers=TIME_TRIGGERS)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # the terminal bell, counted
    started = T0 - timedelta(hours=2, minutes=10)
    watched(app.session, TRIGGER, "slow", "fired", started, T0, reason="96 < 97")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "PENDING trigger slow (critical)" in visible_text(app))
        shown = visible_text(app)
        assert "pending 2h 10m of 6h" in shown  # in the panel line…
        assert "◔ slow (critical) pending 2h 10m of 6h" in shown  # …and the banner area
        assert "CRITICAL TRIGGER FIRED" not in shown
        assert rings == []
        evaluate(app, clock, hours=3, minutes=50)
        await until(
            pilot, lambda: "‼ CRITICAL TRIGGER FIRED: Success below 97" in visible_text(app)
        )
        assert rings == [1]
        assert "trigger slow FIRED" in app.why_not("advance")


async def test_a_high_trigger_raised_from_the_console_shows_its_deadline_until_cleared(
    tmp_path: Path,
):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, triggers=TIME_TRIGGERS)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "⚑ User complaints about imports: not raised" in pane_text(app))
        await pilot.press("t")  # two manual triggers: the cursor goes to them first
        assert not isinstance(app.screen, NoteScreen)
        await until(pilot, lambda: app.query_one(RunbookPane).selected_trigger() == "complaints")
        await pilot.press("t")
        assert isinstance(app.screen, NoteScreen)
        assert "Raised now, the deadline is 10:00Z" in visible_text(app)
        await pilot.press(*"3 users report failed imports", "enter")
        await until(pilot, lambda: "HIGH complaints FIRED" in visible_text(app))
        shown = visible_text(app)
        assert "roll back by 10:00Z unless cleared with a note (1h left)" in shown
        assert "RAISED (high) by ops 09:00Z: 3 users report failed imports" in pane_text(app)
        raised = journaled(app, Kind.TRIGGER_RAISED)
        assert [(e.get("trigger"), e.get("note")) for e in raised] == [
            ("complaints", "3 users report failed imports")
        ]
        assert "trigger complaints FIRED" in app.why_not("advance")
        clock.advance(minutes=75)
        await until(pilot, lambda: "OVERDUE by 15m" in visible_text(app))
        await pilot.press("t")  # the cursor is still on it: now t clears it
        assert isinstance(app.screen, NoteScreen)
        assert "Clear complaints" in visible_text(app)
        await pilot.press(*"fixed by the v2 hotfix", "enter")
        await until(pilot, lambda: "HIGH complaints FIRED" not in visible_text(app))
        cleared = journaled(app, Kind.TRIGGER_CLEARED)
        assert [(e.get("trigger"), e.get("note")) for e in cleared] == [
            ("complaints", "fixed by the v2 hotfix")
        ]
        assert "trigger complaints" not in app.why_not("advance")


async def test_a_raised_critical_trigger_behaves_like_a_fired_one(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, triggers=TIME_TRIGGERS)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "Data corruption: not raised" in pane_text(app))
        await point_at_trigger(pilot, app, "corruption")
        await pilot.press("t")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"rows with NULL owner", "enter")
        await until(pilot, lambda: "‼ CRITICAL TRIGGER FIRED: Data corruption" in visible_text(app))
        assert rings == [1]
        assert "trigger corruption FIRED" in app.why_not("advance")
        assert app.check_action("advance", ()) is None
        await pilot.press("ctrl+r")  # the rollback dialog names it
        assert "Critical trigger fired: corruption" in visible_text(app)


async def test_from_the_last_stage_a_completes_the_cutover_with_the_typed_percent(
    tmp_path: Path,
):
    clock = Clock()
    app = fixed_app(tmp_path, stage="half", clock=clock)  # entered 2 h ago, hold 1 h, no gates
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "complete the cutover at 50 %" in visible_text(app))
        await pilot.press("a")
        assert isinstance(app.screen, AdvanceScreen)
        assert "Complete the cutover at 50 % (Half)" in visible_text(app)
        await pilot.press("5", "enter")  # a wrong percent does nothing
        assert isinstance(app.screen, AdvanceScreen) and not app.screen.started
        await pilot.press("backspace", *"50", "enter")
        await until(pilot, lambda: len(journaled(app, Kind.COMPLETE)) == 1)
        await pilot.press("escape")
        await until(pilot, lambda: "✓ CUTOVER COMPLETE (ops, 09:00Z)" in visible_text(app))
        shown = visible_text(app)
        assert "nothing left to advance" in shown
        assert "✓ 50 % Half · CUTOVER COMPLETE" in pane_text(app)
        assert app.check_action("advance", ()) is None
        assert "the cutover is complete" in app.why_not("advance")
        assert app.check_action("signoff", ()) is None
        assert app.check_action("rollback", ()) is True  # toward safety: never refused
    # no flag was touched
    assert (tmp_path / "flag" / "percent").read_text().strip() == "50"


async def test_the_console_opens_with_what_changed_while_this_operator_was_away(tmp_path: Path):
    from cutover.judge.digest import last_seen, mark_seen, seen_path
    from cutover.tui.screens.digest import DigestScreen

    from .conftest import session_for

    marker = seen_path(tmp_path / "journal.jsonl")
    mark_seen(marker, "ops", T0 - timedelta(hours=2))  # ops closed the console at 07:00
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, triggers=TIME_TRIGGERS)
    alice = session_for(app.runbook.path, clock=lambda: T0 - timedelta(hours=1))
    alice.journal.actor = "alice from 10.0.0.7"
    alice.journal.append(
        Kind.SIGNOFF,
        stage="canary",
        step="no_complaints",
        visit=2,
        note="support inbox is empty",
        override=False,
        probe=None,
    )
    alice.journal.append(
        Kind.TRIGGER_RAISED, trigger="complaints", severity="high", note="2 tickets"
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DigestScreen))
        shown = visible_text(app)
        assert "While you were away: since 07:00Z (2h ago)" in shown
        assert "alice from 10.0.0.7 signed no_complaints (canary): support inbox is empty" in (
            shown
        )
        assert "alice from 10.0.0.7 RAISED complaints: 2 tickets" in shown
        assert "canary: held 0s of 1d" in shown  # the hold, as the digest says it
        await pilot.press("ctrl+r")  # rollback answers under it, like under any dialog
        assert "EMERGENCY ROLLBACK" in visible_text(app)
        await pilot.press("escape", "escape")
        assert app.screen is app.main
        clock.advance(minutes=30)
    # quitting marks everything up to now as seen by ops
    assert last_seen(marker, "ops") == T0 + timedelta(minutes=30)


async def test_no_digest_when_nothing_changed_but_the_hold(tmp_path: Path):
    from cutover.judge.digest import mark_seen, seen_path
    from cutover.tui.screens.digest import DigestScreen

    mark_seen(seen_path(tmp_path / "journal.jsonl"), "ops", T0 - timedelta(minutes=5))
    app = fixed_app(tmp_path, stage="canary", clock=Clock())
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "✓ PASS gate success" in visible_text(app))
        assert not isinstance(app.screen, DigestScreen)
        assert app.screen is app.main


MEDIUM = """
[[triggers]]
id = "errors_many"
title = "A dozen errors of one kind"
query = "errors"
column = "n"
op = ">"
value = 10
severity = "medium"
"""


async def test_a_fired_medium_trigger_holds_the_stage_where_the_hold_is_shown(tmp_path: Path):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, triggers=MEDIUM, hold="2h")
    watched(app.session, GATE, "success", "pass", ENTRY, T0)  # 3 h of PASS: enough, but…
    async with app.run_test(size=(160, 48)) as pilot:
        said = (
            "2h held, but held back by errors_many",  # the header's hold
            "held back by errors_many (medium: extend monitoring)",
            "⚠ MEDIUM errors_many FIRED: 12 > 10 — holds the stage (extend monitoring)",
        )
        # every line of the screen says it (drawn together, once the answers are in)
        await until(pilot, lambda: all(words in visible_text(app) for words in said))
        assert "2h held, but held back by errors_many" in pane_text(app)
        assert "hold held back by errors_many" in app.why_not("advance")
        runner_of(app).rows["errors"] = (("error", "n"), (("timeout", 3),))
        evaluate(app, clock, minutes=1)
        await until(pilot, lambda: "hold ✓ 2h met" in visible_text(app))
        await until(pilot, lambda: "MEDIUM" not in visible_text(app))


async def test_advance_from_the_console_once_its_own_evidence_has_held_long_enough(
    tmp_path: Path,
):
    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, hold="14m")
    app.session.journal.append(
        Kind.SIGNOFF,
        stage="canary",
        step="no_complaints",
        visit=2,
        note="",
        override=False,
        probe=None,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "✓ PASS gate success" in visible_text(app))
        await until(pilot, lambda: "advance ✗ refused: 14m of hold left" in visible_text(app))
        for _ in range(14):  # the console alone watches, every minute, for 14 minutes
            evaluate(app, clock, minutes=1)
        await until(pilot, lambda: "hold ✓ 14m met" in visible_text(app))
        await until(pilot, lambda: "advance ✓ 10 % → 50 % (Half)" in visible_text(app))
        await pilot.press("a", *"50", "enter")
        await until(pilot, lambda: app.cstate.stage_id == "half")
        done = journaled(app, Kind.ADVANCE_DONE)
        assert [e.get("action") != "a1" for e in done] == [False, True]


async def test_help_says_where_time_stands_now_and_how_it_works(tmp_path: Path):
    from cutover.tui.screens.help import HelpScreen

    clock = Clock()
    app = fixed_app(tmp_path, stage="canary", clock=clock, rate=96.0, triggers=TIME_TRIGGERS)
    watched(app.session, GATE, "success", "pass", ENTRY, ENTRY + timedelta(minutes=50))
    watched(app.session, GATE, "success", "pass", T0 - timedelta(minutes=40), T0)
    watched(app.session, TRIGGER, "slow", "fired", T0 - timedelta(hours=1), T0, reason="96 < 97")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "success PASS for 40m of 1d" in visible_text(app))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        now = str(app.screen.query_one("#help-now").render())
        assert "hold of Canary: success PASS for 40m of 1d" in now
        assert "restarted 08:20Z after success: a 1h 30m gap (no evaluation)" in now
        assert "trigger slow (critical) pending 1h of 6h" in now
        assert "evidence: `cutover watch` last recorded at 09:00Z" in now
        how = str(app.screen.query_one("#help-time").render())
        for words in (
            "PASS, by the evidence, for the whole hold",
            "max_gap",
            "`cutover watch` keeps evidence while nobody has the console open",
            "g accepts it with a note",
            "◔ PENDING",
            "critical: roll back now",
            "high: roll back by its deadline",
            "medium: extend monitoring",
            "a person raises one with t and a note",
        ):
            assert words in how, words
        keys = str(app.screen.query_one("#help-keys").render())
        assert "     t  raise (or clear) the selected manual trigger" in keys
        assert "     g  accept the gap in the evidence that restarted the hold" in keys
        evaluate(app, clock, minutes=10)  # kept current while open
        await until(
            pilot,
            lambda: "pending 1h 10m of 6h" in str(app.screen.query_one("#help-now").render()),
        )


async def test_a_read_only_console_offers_no_raise_clear_or_accept_gap(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", readonly=True, triggers=TIME_TRIGGERS)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Data corruption: not raised (critical)" in pane_text(app))
        for action in ("trigger", "accept_gap"):
            assert app.check_action(action, ()) is False
        assert "t raises it" not in pane_text(app)
        assert "g accepts" not in visible_text(app)
        await pilot.press("t")
        assert app.screen is app.main


async def test_a_note_dialog_closes_only_when_what_it_asks_about_changed(tmp_path: Path):
    from .conftest import session_for

    app = fixed_app(tmp_path, stage="canary", triggers=TIME_TRIGGERS)
    other = session_for(app.runbook.path)
    other.journal.actor = "alice"
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Data corruption: not raised" in pane_text(app))
        await point_at_trigger(pilot, app, "corruption")
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen))
        # news about something else: the question still holds
        other.journal.append(
            Kind.SIGNOFF,
            stage="canary",
            step="no_complaints",
            visit=2,
            note="",
            override=False,
            probe=None,
        )
        await until(pilot, lambda: "no_complaints" in app.cstate.signoffs)
        assert isinstance(app.screen, NoteScreen)
        # the same trigger raised elsewhere: nothing left to raise here
        other.journal.append(
            Kind.TRIGGER_RAISED, trigger="corruption", severity="critical", note="bad rows"
        )
        await until(pilot, lambda: not isinstance(app.screen, NoteScreen))
        assert len(journaled(app, Kind.TRIGGER_RAISED)) == 1
        for words in (
            "journal: alice — raised corruption: bad rows",
            "dialog closed: corruption was raised meanwhile by alice",
        ):
            await until(pilot, lambda w=words: w in [str(n.message) for n in app._notifications])
