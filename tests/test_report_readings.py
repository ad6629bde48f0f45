"""What the report and the console's trends say of what the record holds but nobody could
compute or honestly date: an interval that is NaN reads "no interval (NaN)", never
`[nan–nan]`, in the report's tables, its documents and the console's trend line; a journal
event from a clock ahead is said, and stretches no duration and no chart."""

from __future__ import annotations

import math
from datetime import timedelta

from cutover.record.evidence import GATE, Evaluation, EvidenceStore
from cutover.record.journal import Journal
from cutover.report import facts, markdown, tables
from cutover.report.timeline import Point, Readings, interval_text
from cutover.tui.trend_line import Axis, trend_text
from report_world import KEY, at, record


def test_an_interval_that_could_not_be_computed_says_so_in_the_report_never_nan(tmp_path):
    world = record(tmp_path)
    before = facts.build(world.session(), stage="canary")
    (canary,) = [s for s in before.stages if s.gates and s.gates[0].latest is not None][-1:]
    latest = canary.gates[0].latest
    assert latest is not None and latest.interval is not None
    assert tables.interval(latest.interval) == interval_text(latest.interval).replace("–", " – ")
    # The gate's last evaluation of that visit, with a NaN value and interval (what a
    # writer that did not refuse NaN left in the evidence).
    last = latest.last + timedelta(seconds=30)
    store = world.session().evidence_store("watch", clock=lambda: at(400))
    store.record(
        [Evaluation(GATE, "success", "canary", "wait", math.nan, (math.nan, math.nan),
                    "no rows", latest.sql, last)]
    )  # fmt: skip
    store.flush()
    made = facts.build(world.session(), stage="canary", now=at(400))
    (again,) = [s for s in made.stages if s.visit == canary.visit]
    assert again.gates[0].latest is not None and again.gates[0].latest.last == last
    (row,) = tables.comparisons(again).rows
    assert row[3:5] == ("no value (NaN)", "no interval (NaN)")
    document = markdown.render(made, {}, None)
    assert "no interval (NaN)" in document
    assert "nan" not in document.lower().replace("no interval (nan)", "").replace(
        "no value (nan)", ""
    )


def test_the_trend_line_says_no_interval_where_the_latest_one_is_nan():
    start = at(0)
    axis = Axis(start, start + timedelta(minutes=30), 20)
    points = [
        Point(start + timedelta(minutes=m), 99.0, "pass", (98.5, 99.4)) for m in range(0, 20, 5)
    ]
    shown = trend_text("success", points, axis, ">=", 95, start + timedelta(minutes=20)).plain
    assert shown.endswith(" [98.5–99.4]")
    nan = [*points, Point(start + timedelta(minutes=21), None, "unknown", (math.nan, math.nan))]
    shown = trend_text("success", nan, axis, ">=", 95, start + timedelta(minutes=22)).plain
    assert shown.endswith(" [no interval (NaN)]") and "nan" not in shown
    infinite = [*points, Point(start + timedelta(minutes=21), 5.0, "pass", (-math.inf, 9.0))]
    shown = trend_text("success", infinite, axis, ">=", 95, start + timedelta(minutes=22)).plain
    assert shown.endswith(" [-∞–9]")


# -- journal events from the future ----------------------------------------------------------


def appended(world, kind: str, when, actor: str = "dave", **fields) -> None:
    journal = Journal(
        world.session().runbook.journal_path, actor=actor, host="skewed", clock=lambda: when,
        key=KEY.encode(),
    )  # fmt: skip
    journal.append(kind, **fields)


def test_a_journal_event_from_a_clock_ahead_stretches_nothing_and_is_said(tmp_path):
    world = record(tmp_path)
    honest = facts.build(world.session(), every=True, now=at(400))
    three_years = at(60 * 24 * 365 * 3)
    appended(world, "trigger.raised", three_years, trigger="complaints", note="ahead")
    made = facts.build(world.session(), every=True, now=at(400))
    assert made.as_of == honest.as_of == at(398)
    assert [s.end for s in made.stages] == [s.end for s in honest.stages]
    assert (made.summary.started, made.summary.ended) == (at(0), at(398))
    (said,) = [w for w in made.warnings if "from the future" in w]
    assert said.startswith("journal event 18 (trigger.raised by dave) is dated 2029-")
    assert "placed at 2026-11-20 14:38:00Z" in said
    # The raise is still in the report, where the journal puts it: after the last entry.
    (raised,) = [n for n in made.stages[-1].notes if n.note == "ahead"]
    assert raised.at == at(398)
    # The same record read three years on: that event is no longer ahead of anything.
    later = facts.build(world.session(), every=True, now=three_years)
    assert later.as_of == three_years and not [w for w in later.warnings if "future" in w]


def test_an_event_dated_after_the_entries_appended_after_it_is_from_the_future(tmp_path):
    """The journal is in the order things were done: an event dated a day after the one
    appended next was written by a clock a day ahead, whatever the report's clock says."""
    world = record(tmp_path)
    appended(world, "trigger.raised", at(398 + 24 * 60), trigger="complaints", note="ahead")
    appended(world, "trigger.cleared", at(399), actor="erin", trigger="complaints", note="ok")
    made = facts.build(world.session(), every=True, now=at(60 * 24 * 365 * 3))
    assert made.as_of == at(399)
    assert made.stages[-1].end == at(399)  # the visit still open: to the honest last entry
    (said,) = [w for w in made.warnings if "from the future" in w]
    assert "journal event 18 (trigger.raised by dave) is dated 2026-11-21 14:38:00Z" in said
    # A clock a minute behind the one before it is no clock ahead: nothing said.
    appended(world, "trigger.raised", at(400), trigger="complaints", note="fine")
    appended(world, "trigger.cleared", at(399), actor="erin", trigger="complaints", note="ok")
    again = facts.build(world.session(), every=True, now=at(401))
    assert len([w for w in again.warnings if "from the future" in w]) == 1
    assert again.as_of == at(400)


def test_the_trends_readings_follow_new_lines_and_forget_in_time_order(tmp_path):
    # Each series is kept sorted between asks (the console asks every 5 s): what a later
    # read adds, to an open run or as a new one, is in the next answer, in time order.
    path = tmp_path / "evidence.jsonl"
    store = EvidenceStore(path, by="watch", clock=lambda: at(48))
    t0 = at(0)

    def evaluate(minute: int, verdict: str, value: float) -> None:
        when = t0 + timedelta(minutes=minute)
        store.record([Evaluation(GATE, "ok", "canary", verdict, value, None, "", "d1", when)])
        store.flush()

    readings = Readings(path)
    evaluate(0, "pass", 99.0)
    evaluate(10, "pass", 98.0)
    readings.read()
    first = [p.at for p in readings.points(GATE, "ok", "canary")]
    assert first == sorted(first) and first[0] == t0 and first[-1] == t0 + timedelta(minutes=10)

    evaluate(20, "wait", 90.0)  # a new run
    evaluate(30, "pass", 97.0)
    readings.read()
    after = readings.points(GATE, "ok", "canary", since=t0 + timedelta(minutes=5))
    assert [p.at for p in after] == [t0 + timedelta(minutes=m) for m in (10, 20, 30)]
    assert [p.verdict for p in after] == ["pass", "wait", "pass"]
    assert readings.points(GATE, "ok", None, until=t0) == readings.points(GATE, "ok", until=t0)

    readings.forget_before(t0 + timedelta(minutes=15))
    assert [p.at for p in readings.points(GATE, "ok")] == [
        t0 + timedelta(minutes=20),
        t0 + timedelta(minutes=30),
    ]
