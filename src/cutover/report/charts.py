"""The report's charts, drawn with matplotlib's SVG backend: each gate's value over the stage
with its threshold and interval band, the triggers' states on one timeline, the configured
percent against the share traffic showed; moves, rollbacks and hold restarts marked on the
same time axis. Only `cutover report` imports this module (matplotlib costs ~0.4 s to
import: `check` and the console never pay it). Deterministic: fixed id salt, no date in
the metadata, text left as text (searchable, and the same bytes for the same record)."""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import matplotlib

matplotlib.use("svg")  # before pyplot: no display, no GUI toolkit, on any box

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cutover.judge.verdicts import SYMBOL
from cutover.report.facts import GateFacts, StageFacts
from cutover.report.tables import Chart
from cutover.report.timeline import STATES, Point, Restart

# Colours that survive greyscale printing only with help: every state also has a hatch,
# every mark a line style and a word.
STATE_STYLE = {
    "quiet": ("#d9ead3", ""),
    "pending": ("#ffe599", "/"),
    "suspect": ("#f6b26b", "o"),
    "fired": ("#cc0000", "x"),
    "unknown": ("#b7b7b7", "\\\\"),
}
MOVE_STYLE = {
    "advance": ("#38761d", "-"),
    "rollback": ("#cc0000", "--"),
    "stepback": ("#b45f06", "-."),
}
VERDICT_MARK = {
    "pass": ("o", "#38761d"),
    "n/a": ("o", "#999999"),
    "wait": ("s", "#b45f06"),
    "fail": ("X", "#cc0000"),
}
# No date (the same bytes every time) and no RDF block naming other sites' vocabularies.
NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
MAX_POINTS = 600  # about a point per 1.5 px of a 9-inch chart; bad verdicts are always kept


def _settings(salt: str) -> dict:
    return {
        "svg.hashsalt": f"cutover-{salt}",  # ids stable across runs, distinct across charts
        "svg.fonttype": "none",  # text stays text: smaller, searchable, no glyph paths
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "timezone": "UTC",
        "axes.grid": True,
        "grid.alpha": 0.3,
    }


def _svg(figure: Figure, salt: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_settings(salt)):
        figure.savefig(buffer, format="svg", metadata=NO_METADATA)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(salt: str, height: float = 2.6, right: float = 0.98, left: float = 0.09) -> Figure:
    with matplotlib.rc_context(_settings(salt)):
        figure = Figure(figsize=(9, height), dpi=96)
    # Fixed margins, not a layout engine: constrained layout measured every label twice
    # and was half of what a chart cost.
    figure.subplots_adjust(left=left, right=right, bottom=0.6 / height, top=1 - 0.35 / height)
    return figure


def _time_axis(ax, start: datetime, end: datetime) -> None:
    if end <= start:
        end = start + (end - start) + _minute()
    ax.set_xlim(start, end)
    locator = mdates.AutoDateLocator(tz=start.tzinfo)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=start.tzinfo))
    ax.set_xlabel("time (UTC)")


def _minute() -> timedelta:
    return timedelta(minutes=1)


def _marks(ax, facts: StageFacts, *, restarts: Sequence[Restart] = ()) -> None:
    """Moves (and rollbacks), the visit's entry, and the hold's restarts on the time axis."""
    ax.axvline(facts.visit.entered_at, color="#444444", lw=0.8, ls=":", gid="entered")
    for index, move in enumerate(facts.moves):
        colour, style = MOVE_STYLE.get(move.move, ("#444444", "-"))
        at = move.ended_at or move.at
        ax.axvline(at, color=colour, lw=1.2, ls=style, gid=f"move-{move.move}-{index}")
        label = f"{move.move} → {move.to_percent} %"
        if move.outcome != "done":
            label += f" ({move.outcome})"
        ax.annotate(
            label,
            (mdates.date2num(at), 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=6,
            color=colour,
        )
    for index, gap in enumerate(facts.gaps):
        # Silence in the evidence, shaded: accepted with a note (light) or not (hatched).
        ax.axvspan(
            gap.start,
            gap.end,
            color="#cccccc" if gap.accepted_by else "#f4cccc",
            hatch="" if gap.accepted_by else "//",
            alpha=0.5,
            lw=0,
            gid=f"gap-{index}",
            label="gap (accepted)" if gap.accepted_by else "gap",
        )
    if restarts:
        times = [mdates.date2num(r.at) for r in restarts]
        ax.plot(
            times,
            [0.02] * len(times),
            ls="none",
            marker="^",
            color="#cc0000",
            ms=6,
            transform=ax.get_xaxis_transform(),
            gid="restarts",
            label="hold restart",
        )


def _thinned(points: Sequence[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return list(points)
    step = len(points) / MAX_POINTS
    keep = {round(i * step) for i in range(MAX_POINTS)}
    return [p for i, p in enumerate(points) if i in keep or p.verdict not in ("pass", "quiet")]


def _breaks(points: Sequence[Point], max_gap_s: float) -> list[Point]:
    """The points with a valueless one where two readings are further apart than max_gap."""
    out: list[Point] = []
    for point in points:
        if out and (point.at - out[-1].at).total_seconds() > max_gap_s:
            out.append(Point(out[-1].at + timedelta(seconds=1), None, "gap"))
        out.append(point)
    return out


def gate_chart(facts: StageFacts, gate: GateFacts) -> Chart:
    salt = f"{facts.visit.stage}-{facts.visit.visit}-gate-{gate.gate.id}"
    figure = _figure(salt)
    ax = figure.add_subplot()
    every = _thinned(gate.points)
    points = [p for p in every if p.value is not None]
    # A line across a gap would draw values nobody read: it breaks where readings stop, and
    # where a reading had no value (UNKNOWN: the last good value is not carried over it).
    breaks = _breaks(every, facts.stage.max_gap_s)
    with_interval = [p for p in breaks if p.interval is not None or p.value is None]
    if any(p.interval is not None for p in with_interval):
        ax.fill_between(
            [p.at for p in with_interval],
            [p.interval[0] if p.interval else math.nan for p in with_interval],
            [p.interval[1] if p.interval else math.nan for p in with_interval],
            step="post",
            color="#6fa8dc",
            alpha=0.3,
            lw=0,
            gid="interval",
            label="interval",
        )
    if points:
        ax.plot(
            [p.at for p in breaks],
            [math.nan if p.value is None else p.value for p in breaks],
            color="#1c4587",
            lw=1,
            drawstyle="steps-post",
            gid="value",
            label="value",
        )
        for verdict, (marker, colour) in VERDICT_MARK.items():
            chosen = [p for p in points if p.verdict == verdict]
            if chosen and verdict != "pass":
                ax.plot(
                    [p.at for p in chosen],
                    [p.value for p in chosen],
                    ls="none",
                    marker=marker,
                    color=colour,
                    ms=4,
                    gid=f"verdict-{verdict}",
                    label=verdict.upper(),
                )
    else:
        ax.text(
            0.5,
            0.5,
            "no value recorded in this window",
            transform=ax.transAxes,
            ha="center",
            gid="no-data",
        )
    valueless = [p for p in every if p.value is None]
    if valueless:  # no height to draw: marked along the bottom, as the console's `?`
        ax.plot(
            [p.at for p in valueless],
            [0.0] * len(valueless),
            transform=ax.get_xaxis_transform(),
            ls="none",
            marker="|",
            color="#b45f06",
            ms=8,
            clip_on=False,
            gid="no-value",
            label="no value",
        )
    if gate.threshold is not None:
        op = gate.gate.check.op
        ax.axhline(
            gate.threshold,
            color="#cc0000",
            lw=1,
            ls="--",
            gid="threshold",
            label=f"threshold {SYMBOL[op]} {gate.threshold:g}",
        )
    if gate.baseline_value is not None:
        ax.axhline(
            gate.baseline_value,
            color="#674ea7",
            lw=1,
            ls=":",
            gid="baseline",
            label=f"baseline {gate.baseline_value:.4g}",
        )
    _marks(ax, facts, restarts=[r for r in facts.restarts if r.gate == gate.gate.id])
    _time_axis(ax, facts.window_start, facts.end)
    # The runbook's words as written: a `$` in a column's name is no TeX (two of them
    # would be drawn as maths or stop the report).
    column = gate.gate.check.column or gate.gate.check.successes or "value"
    ax.set_ylabel(column, parse_math=False)
    ax.set_title(f"gate {gate.gate.id}: {gate.words}", loc="left", fontsize=9, parse_math=False)
    ax.legend(loc="lower left", fontsize=6, ncols=4)
    return Chart(salt, f"gate {gate.gate.id}", _svg(figure, salt))


def triggers_chart(facts: StageFacts) -> Chart | None:
    if not facts.triggers:
        return None
    salt = f"{facts.visit.stage}-{facts.visit.visit}-triggers"
    rows = len(facts.triggers)
    # Room on the left for the longest trigger's name (about 0.0085 of the width a letter
    # at 8 pt), on the right for the states' legend.
    names = [f"{t.trigger.id} ({t.trigger.severity})" for t in facts.triggers]
    left = min(0.45, 0.03 + 0.0085 * max(len(n) for n in names))
    figure = _figure(salt, height=1.2 + 0.35 * rows, left=left, right=0.88)
    ax = figure.add_subplot()
    for row, trigger in enumerate(facts.triggers):
        for state in STATES:
            spans = [
                (mdates.date2num(a), max(mdates.date2num(b) - mdates.date2num(a), 1e-4))
                for a, b, s in trigger.spans
                if s == state
            ]
            if spans:
                colour, hatch = STATE_STYLE[state]
                ax.broken_barh(
                    spans,
                    (row - 0.35, 0.7),
                    facecolors=colour,
                    hatch=hatch,
                    edgecolor="#666666",
                    lw=0.3,
                    gid=f"trigger-{trigger.trigger.id}-{state}",
                )
    ax.set_yticks(range(rows), names)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.invert_yaxis()
    _marks(ax, facts)
    _time_axis(ax, facts.window_start, facts.end)
    ax.set_title("triggers: quiet, pending, suspect, fired, unknown", loc="left", fontsize=9)
    ax.legend(
        handles=[
            Patch(facecolor=c, hatch=h, edgecolor="#666666", label=s)
            for s, (c, h) in STATE_STYLE.items()
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=6,
    )
    return Chart(salt, "triggers", _svg(figure, salt))


def percent_chart(facts: StageFacts) -> Chart:
    salt = f"{facts.visit.stage}-{facts.visit.visit}-percent"
    figure = _figure(salt)
    ax = figure.add_subplot()
    if facts.percent:
        ax.step(
            [a for a, _ in facts.percent],
            [p for _, p in facts.percent],
            where="post",
            color="#1c4587",
            lw=1.5,
            gid="configured",
            label="configured percent",
        )
    if facts.observed:
        ax.plot(
            [a for a, _ in facts.observed],
            [v for _, v in facts.observed],
            ls="-",
            marker=".",
            color="#e69138",
            lw=0.8,
            gid="observed",
            label="observed share",
        )
    else:
        ax.text(
            0.5,
            0.5,
            "no observed share recorded",
            transform=ax.transAxes,
            ha="center",
            gid="no-observed",
        )
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% of traffic")
    _marks(ax, facts, restarts=facts.restarts)  # every gate's: the stage's hold
    _time_axis(ax, facts.window_start, facts.end)
    ax.set_title("configured percent against the observed share", loc="left", fontsize=9)
    ax.legend(loc="center left", fontsize=6)
    return Chart(salt, "percent", _svg(figure, salt))


def stage_charts(facts: StageFacts) -> list[Chart]:
    drawn = (job() for job in stage_jobs(facts))
    return [chart for chart in drawn if chart is not None]


def stage_jobs(facts: StageFacts) -> list[Callable[[], Chart | None]]:
    """A stage's charts in their order, each to be drawn on its own (by any process): each
    gate's, the triggers' (None without a trigger), the percent's."""
    gates = [functools.partial(gate_chart, facts, gate) for gate in facts.gates]
    return [
        *gates,
        functools.partial(triggers_chart, facts),
        functools.partial(percent_chart, facts),
    ]


_ID = re.compile(r'\bid="([^"]+)"')


def count_ids(svg: str) -> int:
    return len(_ID.findall(svg))
