"""Trends drawn in text, for the console: a gate's or trigger's value over the hold as one
line of blocks against its threshold, the hold as a bar with its restarts, and a few rows of
chart for the history view. Pure (readings in, rich Text out); every mark is a glyph as well
as a colour, so it reads the same with NO_COLOR."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.text import Text

from cutover.judge.verdicts import SYMBOL
from cutover.report.timeline import Point, interval_text
from cutover.runbook.durations import humanize

BLOCKS = "▁▂▃▄▅▆▇█"
# How a column looks by the worst verdict in it: style, and the style NO_COLOR keeps.
VERDICT_STYLE = {
    "fail": "bold red",
    "fired": "bold red",
    "wait": "yellow underline",
    "unknown": "yellow underline",
}
# A failing column is a cross, not a block: its colour may not be shown (NO_COLOR), and a
# reversed block would look high where the value is low.
FAILED = frozenset({"fail", "fired"})
CROSS = "×"
RANK = {"fail": 3, "fired": 3, "wait": 2, "unknown": 2, "pass": 1, "quiet": 1, "n/a": 0}
COUNTING, NOT_COUNTING, TO_GO, RESTART = "━", "─", "·", "↺"
# A column whose readings had no value (the query failed, NaN, ±Infinity): no height to draw,
# and no earlier reading carried over it as if it were still true.
NO_VALUE = "?"
# The history chart's value scale, left of its columns ("  99.5 ┤"): its width, and the
# columns it takes with the axis line.
SCALE_WIDTH = 6
CHART_INDENT = SCALE_WIDTH + 2


@dataclass(frozen=True)
class Axis:
    """Time laid over `width` columns, [start, end)."""

    start: datetime
    end: datetime
    width: int

    def column(self, at: datetime) -> int:
        span = max((self.end - self.start).total_seconds(), 1e-9)
        x = (at - self.start).total_seconds() / span * self.width
        return min(self.width - 1, max(0, int(x)))

    def time_of(self, column: int) -> datetime:
        return self.start + (self.end - self.start) * (column / max(1, self.width))


def hold_axis(
    entered_at: datetime,
    now: datetime,
    required_s: float,
    since: datetime | None,
    width: int,
) -> Axis:
    """The hold's axis: from the start of the trailing hold (or the stage's entry, if more
    recent) to when the hold will be met at the earliest (or now, when no hold is asked)."""
    hold = timedelta(seconds=required_s)
    start = max(entered_at, now - hold) if required_s > 0 else entered_at
    end = now
    if required_s > 0:
        end = max(now, (since or now) + hold)
    if end <= start:
        end = start + timedelta(seconds=1)
    return Axis(start, end, max(1, width))


def worst(check_op: str | None, values: Sequence[float]) -> float:
    """The value a column shows: the one nearest failing (the lowest under `>=`)."""
    if check_op in (">", ">="):
        return min(values)
    if check_op in ("<", "<="):
        return max(values)
    return values[-1]


def _columns(
    points: Sequence[Point], axis: Axis, op: str | None, carry_s: float = 0.0
) -> list[tuple[float, str] | None]:
    """Each column's worst value and verdict. A reading stands until the next one, up to
    `carry_s` (the stage's max_gap): a column between two readings shows the earlier one,
    and a longer silence stays blank, as the hold counts it. A column whose readings had no
    value is NaN (drawn as NO_VALUE), with their worst verdict."""
    buckets: list[list[Point]] = [[] for _ in range(axis.width)]
    for p in points:
        if axis.start <= p.at <= axis.end:
            buckets[axis.column(p.at)].append(p)
    out: list[tuple[float, str] | None] = []
    held: tuple[datetime, float, str] | None = None
    for index, bucket in enumerate(buckets):
        if not bucket:
            begins = axis.time_of(index)
            carried = held is not None and (begins - held[0]).total_seconds() <= carry_s
            out.append((held[1], held[2]) if carried and held is not None else None)
            continue
        verdict = max((p.verdict for p in bucket), key=lambda v: RANK.get(v, 2))
        values = [p.value for p in bucket if _finite(p.value)]
        out.append((worst(op, values) if values else math.nan, verdict))
        last = bucket[-1]
        held = (last.at, last.value if _finite(last.value) else math.nan, last.verdict)  # type: ignore[arg-type]
    return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def scaled(cols: Sequence[tuple[float, str] | None]) -> list[float]:
    """The values the scale spans: those not failing (a FAIL is a cross, drawn at the
    bottom of a line, so one far-off reading does not flatten every other), else all."""
    drawn = [c for c in cols if c is not None and math.isfinite(c[0])]
    return [c[0] for c in drawn if c[1] not in FAILED] or [c[0] for c in drawn]


def _scale(values: Sequence[float], threshold: float | None) -> tuple[float, float]:
    known = [*values, *([threshold] if threshold is not None else [])]
    lo, hi = min(known), max(known)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    return lo, hi


def sparkline(
    points: Sequence[Point],
    axis: Axis,
    op: str | None,
    threshold: float | None,
    now: datetime,
    carry_s: float = 0.0,
) -> Text:
    """One line: each column a block as high as its value (the scale spans the values and
    the threshold), by its worst verdict (FAIL a cross, WAIT underlined); no
    reading, a blank; what is still to come, dots. The level of the threshold is the
    block drawn at each end."""
    last = axis.column(now)
    cols = [c if i <= last else None for i, c in enumerate(_columns(points, axis, op, carry_s))]
    values = scaled(cols)
    text = Text(no_wrap=True, overflow="crop")
    lo, hi = _scale(values or [threshold or 0.0], threshold)

    def block(value: float) -> str:
        level = int((min(hi, max(lo, value)) - lo) / (hi - lo) * (len(BLOCKS) - 1) + 0.5)
        return BLOCKS[min(len(BLOCKS) - 1, max(0, level))]

    for index, col in enumerate(cols):
        if col is None:
            text.append(TO_GO if index > last else " ", style="dim")
        else:
            glyph = (
                CROSS if col[1] in FAILED else block(col[0]) if math.isfinite(col[0]) else NO_VALUE
            )
            text.append(glyph, style=VERDICT_STYLE.get(col[1], "green"))
    return text


def threshold_words(op: str | None, threshold: float | None) -> str:
    if op is None or threshold is None:
        return ""
    return f"{SYMBOL.get(op, op)}{threshold:g}"


def trend_text(
    name: str,
    points: Sequence[Point],
    axis: Axis,
    op: str | None,
    threshold: float | None,
    now: datetime,
    name_width: int = 12,
    carry_s: float = 0.0,
) -> Text:
    """`success   ▇▇▇▆▇▇ ▇▇▁▁  85 ≥95 [84.2–85.5]`: the name, the line, the latest value,
    the threshold, and the latest interval where there is one."""
    # The latest reading, value or not: an UNKNOWN now is not the last good value.
    latest = points[-1] if points else None
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{name[:name_width]:<{name_width}} ")
    text.append_text(sparkline(points, axis, op, threshold, now, carry_s))
    tail = " —" if latest is None or not _finite(latest.value) else f" {latest.value:.4g}"
    text.append(tail, style="bold")
    words = threshold_words(op, threshold)
    if words:
        text.append(f" {words}", style="dim")
    if latest is not None and latest.interval is not None:
        text.append(f" [{interval_text(latest.interval)}]", style="dim")
    return text


def hold_bar(
    axis: Axis,
    now: datetime,
    since: datetime | None,
    restarts: Sequence[datetime],
    required_s: float,
    held_s: float,
    name_width: int = 12,
) -> Text:
    """`hold      ───↺──━━━━━━│·······  1h 12m of 2h`: counting since the last restart
    (━), not counting before it (─), still to go (·), each restart (↺)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{'hold':<{name_width}} ")
    last = axis.column(now)
    begun = axis.column(since) if since is not None else None
    marks = {axis.column(r) for r in restarts if axis.start <= r <= axis.end}
    for index in range(axis.width):
        if index in marks and index <= last:
            text.append(RESTART, style="bold red")
        elif index > last:
            text.append(TO_GO, style="dim")
        elif begun is not None and index >= begun:
            text.append(COUNTING, style="green")
        else:
            text.append(NOT_COUNTING, style="dim")
    met = held_s >= required_s
    words = (
        f" ✓ {humanize(required_s)} met"
        if met
        else f" {humanize(held_s)} of {humanize(required_s)}"
    )
    text.append(words, style="bold" if met else "")
    if restarts:
        text.append(f" ↺{len(restarts)}", style="bold red")
    return text


# -- the history view's chart ----------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    at: datetime
    glyph: str  # ▲ advance, ▼ rollback, ◆ step back, ↺ hold restart, │ a stage's entry


def chart_rows(
    points: Sequence[Point],
    axis: Axis,
    height: int,
    op: str | None,
    threshold: float | None,
    baseline: float | None = None,
    carry_s: float = 0.0,
) -> list[Text]:
    """`height` rows of chart with a value scale on the left: each column's value as a
    block at its height (a FAIL's topped by a cross, WAIT underlined), the threshold as ╌ and the
    baseline as ┈ where no value is drawn."""
    cols = _columns(points, axis, op, carry_s)
    values = scaled(cols)
    extra = [baseline] if baseline is not None else []
    if not values and threshold is None and not extra:
        return [Text("no reading in this window", style="dim")]
    lo, hi = _scale([*values, *extra] or [threshold or 0.0], threshold)
    levels = height * len(BLOCKS)

    def eighths(value: float) -> int:  # a value off the scale (a FAIL) sits at its edge
        return max(1, min(levels, int((value - lo) / (hi - lo) * (levels - 1) + 1.5)))

    def row_of(value: float) -> int:  # 0 = bottom row
        return min(height - 1, int((value - lo) / (hi - lo) * (height - 1) + 0.5))

    rows: list[Text] = []
    for r in range(height - 1, -1, -1):
        text = Text(no_wrap=True, overflow="crop")
        if r == height - 1:
            scale = f"{hi:.4g}"
        elif r == 0:
            scale = f"{lo:.4g}"
        elif threshold is not None and row_of(threshold) == r:
            scale = f"{threshold:.4g}"
        else:
            scale = ""
        text.append(f"{scale[:SCALE_WIDTH]:>{SCALE_WIDTH}} ┤", style="dim")
        for col in cols:
            if col is not None and not math.isfinite(col[0]):
                if r == 0:  # no height to draw: a mark at the bottom, by its verdict
                    text.append(NO_VALUE, style=VERDICT_STYLE.get(col[1], "yellow underline"))
                    continue
            elif col is not None:
                filled = eighths(col[0]) - r * len(BLOCKS)
                if filled > 0:
                    glyph = BLOCKS[min(len(BLOCKS), filled) - 1]
                    if col[1] in FAILED and filled <= len(BLOCKS):
                        glyph = CROSS  # the top of a failing column
                    text.append(glyph, style=VERDICT_STYLE.get(col[1], "green"))
                    continue
            if threshold is not None and row_of(threshold) == r:
                text.append("╌", style="red")
            elif baseline is not None and row_of(baseline) == r:
                text.append("┈", style="magenta")
            else:
                text.append(" ")
        rows.append(text)
    return rows


def marks_row(axis: Axis, marks: Sequence[Mark], indent: int) -> Text:
    """One row of marks under a chart, at their columns (the later of two wins)."""
    cells = [" "] * axis.width
    for mark in sorted(marks, key=lambda m: m.at):
        if axis.start <= mark.at <= axis.end:
            cells[axis.column(mark.at)] = mark.glyph
    text = Text(no_wrap=True, overflow="crop")
    text.append(" " * indent)
    for glyph in cells:
        style = {"▼": "bold red", "↺": "red", "▲": "green"}.get(glyph, "")
        text.append(glyph, style=style)
    return text


def time_row(axis: Axis, indent: int) -> Text:
    """Clock times under the chart, as many as fit (HH:MM, the day when it changes)."""
    cells = [" "] * axis.width
    day = None
    column = 0
    while column < axis.width:
        at = axis.time_of(column)
        word = at.strftime("%H:%M") if at.date() == day else at.strftime("%b %d %H:%M")
        day = at.date()
        if column + len(word) > axis.width:
            break
        cells[column : column + len(word)] = list(word)
        column += len(word) + 3
    return Text(" " * indent + "".join(cells), style="dim", no_wrap=True, overflow="crop")
