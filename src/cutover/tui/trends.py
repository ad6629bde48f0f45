"""The console's trends: under each panel, the value every gate and trigger reading its query
judged over the hold (from the evidence, anyone's: the watcher's, `check`'s, a console's)
against its threshold, and the hold as a bar with its restarts; `h` opens the history view
of the focused panel's query. The evidence is followed by byte offset (the new lines only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from cutover.record.evidence import GATE, TRIGGER, until_now
from cutover.report.timeline import Point, Readings, restarts, visits
from cutover.runbook.model import Comparison, Stage
from cutover.tui.trend_line import hold_axis, hold_bar, trend_text
from cutover.tui.widgets.query_panel import QueryPanel

# How often the trends are redrawn: a column of a day-long hold is half an hour wide, and
# the evidence grows by the watcher's flush (minutes): every few seconds is plenty.
TREND_EVERY_S = 5.0
NAME_WIDTH = 12  # at most: a panel's names take the longest of its own ("hold" at least)
# What a line needs besides its name and sparkline: the latest value, threshold, interval.
TAIL = 22
# Fewer readings than this in the window and a line would say nothing: none is drawn.
FEWEST = 2


@dataclass(frozen=True)
class Judged:
    """One gate or trigger that reads a query: what the evidence calls it, and its check."""

    what: str  # GATE or TRIGGER
    id: str
    stage: str | None  # the gate's stage; None for a trigger (any stage)
    check: Comparison

    @property
    def threshold(self) -> float | None:
        return None if self.check.trend is not None else self.check.value

    @property
    def op(self) -> str | None:
        return None if self.check.trend is not None else self.check.op


def judged_on(stages: list[Stage], triggers, query_id: str, stage_id: str) -> list[Judged]:
    """The gates of `stages` and the triggers live in `stage_id` that read `query_id`."""
    found = [
        Judged(GATE, g.id, s.id, g.check)
        for s in stages
        for g in s.gates
        if g.check.query == query_id
    ]
    found += [
        Judged(TRIGGER, t.id, None, t.check)
        for t in triggers
        if t.check is not None
        and t.check.query == query_id
        and (not t.stages or stage_id in t.stages)
    ]
    return found


class Trends(Static):
    """The trend lines of one panel (mounted into it when it first has any)."""

    DEFAULT_CSS = """
    Trends {
        height: auto;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """


class TrendsMixin:
    """Mixed into CutoverApp."""

    def on_mount(self) -> None:
        # Textual calls the on_mount of every class in the app's MRO: this one runs after
        # the app's own has laid the panels out.
        self.set_interval(TREND_EVERY_S, self.refresh_trends, name="trends")  # type: ignore[attr-defined]

    def trend_readings(self) -> Readings:
        readings = getattr(self, "_trend_readings", None)
        if readings is None:
            session = self.session  # type: ignore[attr-defined]
            readings = Readings(session.store.evidence_feed(), session.journal.key)
            self._trend_readings = readings
        return readings

    def trends_ready(self) -> bool:
        """Whether the evidence has been read once. That first read (a week of it takes
        most of a second) runs on a thread, never on the console's loop; each read after it
        takes only what was appended, on the loop."""
        if getattr(self, "_trends_read", False):
            return True
        if not getattr(self, "_trends_reading", False):
            self._trends_reading = True
            self.run_worker(  # type: ignore[attr-defined]
                self._first_read, thread=True, group="trends", exit_on_error=False
            )
        return False

    def _first_read(self) -> None:
        self.trend_readings().read()
        self.call_from_thread(self._first_read_done)  # type: ignore[attr-defined]

    def _first_read_done(self) -> None:
        self._trends_read = True
        self.refresh_trends()

    def refresh_trends(self) -> None:
        """Redraw every panel's trends from the evidence as it stands (new lines read)."""
        if not getattr(self, "_laid_out", lambda: False)() or not self.trends_ready():
            return
        readings = self.trend_readings()
        readings.read()
        now = self.clock()  # type: ignore[attr-defined]
        state = self.cstate  # type: ignore[attr-defined]
        runbook = self.runbook  # type: ignore[attr-defined]
        if state.entered_at is None:
            return
        self._keep_what_shows(readings, state)
        stage = runbook.stage(state.stage_id)
        hold = self.hold  # type: ignore[attr-defined]
        since = hold.since if hold is not None else None
        restarted: list[datetime] | None = None  # the same for every panel: worked out once
        for panel in self.main.query(QueryPanel):  # type: ignore[attr-defined]
            if not panel.in_view:
                continue  # out of sight costs nothing (tui/onscreen)
            judged = judged_on([stage], runbook.triggers, panel.query_def.id, stage.id)
            width = panel.width_inside  # not .size: that lays out the whole screen
            names = min(NAME_WIDTH, max([4, *(len(j.id) for j in judged)]))
            spark = max(8, width - names - 1 - TAIL)
            axis = hold_axis(state.entered_at, now, stage.hold_s, since, spark)
            lines: list[Text] = []
            for item in judged:
                points = readings.points(item.what, item.id, item.stage, axis.start, now)
                if len(points) < FEWEST:  # a reading without a value (UNKNOWN) says something
                    continue
                lines.append(
                    trend_text(
                        item.id,
                        points,
                        axis,
                        item.op,
                        item.threshold,
                        now,
                        names,
                        stage.max_gap_s,
                    )
                )
            if lines and stage.hold_s > 0 and any(j.what == GATE for j in judged):
                if restarted is None:
                    # Runs dated after now (a clock ahead) are none yet, as the hold has it.
                    runs = until_now(readings.ordered_runs(), now)
                    found = restarts(runs, stage, state.entered_at, now, state.accepted_gaps)
                    restarted = [r.at for r in found]
                lines.append(
                    hold_bar(
                        axis,
                        now,
                        since,
                        restarted,
                        stage.hold_s,
                        hold.held_s if hold is not None else 0.0,
                        names,
                    )
                )
            self._show_trends(panel, lines)

    def _keep_what_shows(self, readings: Readings, state) -> None:
        """Hold only what the trends and the history view can show (this stage and the one
        before): each time the cutover enters a stage, older readings are let go, so a
        month-long cutover costs the console what its last two stages hold."""
        visit = (state.stage_id, state.visit)
        if getattr(self, "_trends_visit", None) == visit:
            return
        self._trends_visit = visit
        seen = visits(self.runbook, self.session.journal.read().events)  # type: ignore[attr-defined]
        if len(seen) > 1:
            readings.forget_before(seen[-2].entered_at)

    def _show_trends(self, panel: QueryPanel, lines: list[Text]) -> None:
        found = panel.query(Trends)
        box = found.first() if found else None
        if box is None:
            if not lines:
                return
            box = Trends(classes="trends")
            panel.mount(box)
        joined = Text("\n").join(lines) if lines else Text("")
        if getattr(box, "_shown", None) != joined:
            box._shown = joined  # type: ignore[attr-defined]
            box.update(joined)
        box.display = bool(lines)

    def action_history(self) -> None:
        """The focused panel's query over the whole stage and the one before."""
        from cutover.tui.screens.history import HistoryScreen, history_of

        panel = self.focused_panel()  # type: ignore[attr-defined]
        if panel is None:
            self.say("focus a panel first (tab), then h shows its history", "warning")  # type: ignore[attr-defined]
            return
        if not self.trends_ready():
            self.say("reading the evidence for the first time: h again in a moment")  # type: ignore[attr-defined]
            return
        self.trend_readings().read()
        query_id = panel.query_def.id
        self.push_screen(  # type: ignore[attr-defined]
            HistoryScreen(panel.query_def, lambda width: history_of(self, query_id, width))
        )


def points_in(readings: Readings, item: Judged, start: datetime, end: datetime) -> list[Point]:
    return readings.points(item.what, item.id, item.stage, start, end)
