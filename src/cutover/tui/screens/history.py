"""`h`: the history of the focused panel's query: each gate and trigger reading it, its
judged value over the whole stage and the stage before, against its threshold and baseline,
with the moves and the hold's restarts marked on the same time axis. Text only, so it reads
at 80×24 and with NO_COLOR (every mark is a glyph)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from cutover.record.evidence import until_now
from cutover.report.facts import baseline_of, comparison_words
from cutover.report.source import RecordSource
from cutover.report.timeline import interval_text, moves, restarts, visits
from cutover.runbook.model import Query
from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean
from cutover.tui.trend_line import (
    CHART_INDENT,
    NO_VALUE,
    Axis,
    Mark,
    chart_rows,
    marks_row,
    time_row,
)
from cutover.tui.trends import judged_on, points_in

CHART_ROWS = 5
MOVE_GLYPH = {"advance": "▲", "rollback": "▼", "stepback": "◆"}
LEGEND = (
    f"█ PASS · × FAIL · underlined: WAIT · {NO_VALUE} UNKNOWN: no value · ╌ threshold · "
    "┈ baseline · ▲ advance · ▼ rollback · ◆ step back · ↺ hold restart · Esc"
)


def history_of(app: Any, query_id: str, width: int) -> list[Text]:
    """The history view's blocks for one query, `width` columns wide."""
    session, runbook, now = app.session, app.runbook, app.clock()
    events = session.journal.read().events
    seen = visits(runbook, events)
    if not seen:
        return [Text("nothing recorded yet: the journal has not entered a stage", style="dim")]
    current = seen[-1]
    before = seen[-2] if len(seen) > 1 else None
    start = before.entered_at if before is not None else current.entered_at
    readings = app.trend_readings()
    runs = until_now(readings.ordered_runs(), now)  # a clock ahead: none yet, as the hold has it
    accepted = app.cstate.accepted_gaps
    shown = [v for v in (before, current) if v is not None]
    stages = [runbook.stage(v.stage) for v in shown]
    marks = [
        Mark(m.ended_at or m.at, MOVE_GLYPH.get(m.move, "│"))
        for m in moves(events)
        if start <= (m.ended_at or m.at) <= now
    ]
    for visit, stage in zip(shown, stages, strict=True):
        end = visit.left_at or now
        marks += [Mark(r.at, "↺") for r in restarts(runs, stage, visit.entered_at, end, accepted)]
    source = RecordSource(session)
    blocks: list[Text] = []
    unique = {s.id: s for s in stages}
    judged = judged_on(list(unique.values()), runbook.triggers, query_id, current.stage)
    if not judged:
        return [Text(f"no gate or trigger reads {query_id} in these stages", style="dim")]
    for item in judged:
        baseline = None
        if item.stage is not None:
            stage = runbook.stage(item.stage)
            entered = next(v.entered_at for v in reversed(shown) if v.stage == item.stage)
            _, baseline = baseline_of(runbook, stage, item.check, source, entered)
        points = points_in(readings, item, start, now)
        axis = Axis(start, now, max(10, width - CHART_INDENT))
        kind = "gate" if item.stage is not None else "trigger"
        where = f" ({item.stage})" if item.stage else ""
        latest = next((p for p in reversed(points) if p.value is not None), None)
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{kind} {clean(item.id)}{where}: ", style="bold")
        head.append(clean(comparison_words(item.check)))
        head.append(f" · {len(points)} readings", style="dim")
        if latest is not None and latest.value is not None:
            head.append(f" · latest {latest.value:.4g}", style="bold")
            if latest.interval is not None:
                head.append(f" [{interval_text(latest.interval)}]")
        if baseline is not None:
            head.append(f" · baseline {baseline:.4g}", style="magenta")
        gap = runbook.stage(item.stage or current.stage).max_gap_s
        rows = chart_rows(points, axis, CHART_ROWS, item.op, item.threshold, baseline, gap)
        block = Text("\n").join(
            [head, *rows, marks_row(axis, marks, CHART_INDENT), time_row(axis, CHART_INDENT)]
        )
        blocks.append(block)
    return blocks


class HistoryScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "close"),
        Binding("h", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]

    DEFAULT_CSS = """
    HistoryScreen #history-dialog { height: 1fr; }
    HistoryScreen .history-chart { margin-bottom: 1; text-wrap: nowrap; }
    """

    def __init__(self, query: Query, draw: Callable[[int], list[Text]]) -> None:
        super().__init__()
        self.query_def = query
        self.draw = draw  # the charts, as wide as asked
        self.drawn_at: int | None = None

    def dialog(self) -> ComposeResult:
        title = f"History · {clean(self.query_def.title)} · {clean(self.query_def.id)}"
        with Vertical(classes="dialog wide", id="history-dialog"):
            yield Static(Text(title, style="bold"), classes="dialog-title")
            yield VerticalScroll(id="history-charts")
            yield Static(Text(LEGEND, style="dim"), id="history-legend")

    def on_mount(self) -> None:
        charts = self.query_one("#history-charts", VerticalScroll)
        charts.focus()
        self.call_after_refresh(self.redraw)

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw)

    def redraw(self) -> None:
        """The charts as wide as the dialog now is (a scrollbar's width kept free)."""
        charts = self.query_one("#history-charts", VerticalScroll)
        width = max(20, charts.content_region.width - 2)
        if width == self.drawn_at:
            return
        self.drawn_at = width
        blocks = self.draw(width)
        shown = list(charts.query(".history-chart").results(Static))
        if len(shown) != len(blocks):
            charts.remove_children()
            charts.mount_all([Static(b, classes="history-chart") for b in blocks])
            return
        for static, block in zip(shown, blocks, strict=True):
            static.update(block)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
