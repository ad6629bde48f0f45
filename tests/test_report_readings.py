"""What the report and the console's trends say of readings the evidence holds but nobody
could compute: an interval that is NaN reads "no interval (NaN)", never `[nan–nan]`, in the
report's tables, its documents and the console's trend line."""

from __future__ import annotations

import math
from datetime import timedelta

from cutover.record.evidence import GATE, Evaluation
from cutover.report import facts, markdown, tables
from cutover.report.timeline import Point, interval_text
from cutover.tui.trend_line import Axis, trend_text
from report_world import at, record


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
