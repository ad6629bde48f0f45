"""Pure helpers that turn values into what the console shows: cells, marks, ages, intervals.

No widgets here, so each rule has a doctest and none needs an app to check.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from rich.text import Text

from cutover.base.inert import inert
from cutover.judge.check import is_stale
from cutover.judge.verdicts import Verdict
from cutover.runbook.durations import humanize

# Danger is never colour alone: every verdict carries a symbol and a word.
VERDICT_MARK = {Verdict.PASS: "✓ PASS", Verdict.FAIL: "✗ FAIL", Verdict.WAIT: "… WAIT"}
VERDICT_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.WAIT: "yellow"}
FIRED_MARK, QUIET_MARK, UNKNOWN_MARK = "‼ FIRED", "· quiet", "? UNKNOWN"
SUSPECT_MARK = "◑ SUSPECT"  # past its threshold as a point, not yet as an interval

# The ladder `+` and `-` climb: every value a refresh interval may take, in seconds.
INTERVALS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def clean(text: object, *, max_len: int | None = None, newlines: bool = False) -> str:
    """Text safe to put on a terminal (cutover.base.inert's rule): controls in caret notation,
    bidi overrides named, so an escape sequence in a query result or error is seen, never
    obeyed. A line break in one-line text shows as ↵; with `newlines` it stays a break.

    >>> clean("ok\\x1b[31mred")
    'ok^[[31mred'
    >>> clean("a\\tb\\nc"), clean("a\\r\\nb", newlines=True)
    ('a b↵c', 'a\\nb')
    >>> clean("\\x9b2J")
    '\\\\x9b2J'
    >>> clean("evil\\u202egnp.exe")
    'evil<U+202E>gnp.exe'
    >>> clean("[bold]x[/bold]")
    '[bold]x[/bold]'
    >>> clean("abcdef", max_len=4)
    'abc…'
    """
    if newlines:
        return inert(text, max_len=max_len, newlines=True)
    lines = inert(text, newlines=True).split("\n")
    out = "↵".join(lines)
    if max_len is not None and len(out) > max_len:
        out = out[: max_len - 1] + "…"
    return out


def ordinal(n: int) -> str:
    """
    >>> [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd']
    """
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def share_text(percent: float) -> str:
    """An observed share at fixed precision that never reads as 0 while there is any traffic,
    nor as 100 while there is any left.

    >>> [share_text(p) for p in (0, 0.033, 0.728155, 44.8, 99.97, 100)]
    ['0', '<0.1', '0.7', '44.8', '>99.9', '100']
    """
    if percent <= 0:
        return "0"
    if percent >= 100:
        return "100"
    if percent < 0.1:
        return "<0.1"
    if percent > 99.9:
        return ">99.9"
    return f"{percent:.1f}"


def window_of(title: str) -> str:
    """The window an observed-share query counts over, as its title says it ("…, last 15
    min"), else the whole title: a share is only honest with the window it counts.

    >>> window_of("Observed v2 share, last 15 min"), window_of("v2 share")
    ('last 15 min', 'v2 share')
    """
    _, comma, tail = title.rpartition(", ")
    return tail.strip() if comma and tail.strip() else title


def observed_text(
    percent: float | None, count: int | None, unit: str, window: str, why_none: str = ""
) -> str:
    """The observed share in words, with its count and window; it always lags the flag
    (the window still holds traffic from before the last change).

    >>> observed_text(0.728155, 412, "imports", "last 15 min")
    'seen 0.7 % of 412 imports, last 15 min; lags the flag'
    >>> observed_text(None, 0, "imports", "last 15 min", "no traffic in its window yet")
    'seen ? % (no traffic in its window yet)'
    """
    if percent is None:
        return f"seen ? % ({why_none})" if why_none else "seen ? %"
    of = f" of {count:,} {unit}".rstrip() if count is not None else ""
    return f"seen {share_text(percent)} %{of}, {window}; lags the flag"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def cell_text(value: Any) -> str:
    """A value as the table shows it: thousands separated, NULL distinct from 0.

    >>> cell_text(1234567), cell_text(0), cell_text(None)
    ('1,234,567', '0', 'NULL')
    >>> cell_text(Decimal("98.50")), cell_text(12345.678), cell_text(True)
    ('98.50', '12,345.678', 'true')
    >>> cell_text(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    '2025-01-02 03:04:05Z'
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value == value else "NaN"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.timedelta):
        return humanize(value.total_seconds())
    return clean(value, max_len=200)


def cell(value: Any) -> Text:
    """The cell renderable: numbers right-aligned, NULL dim and italic, text never markup."""
    if value is None:
        return Text("NULL", style="dim italic", justify="right")
    return Text(cell_text(value), justify="right" if is_number(value) else "left")


def clock_text(moment: dt.datetime | None) -> str:
    """A moment as HH:MM:SSZ (UTC, as the journal keeps it).

    >>> clock_text(dt.datetime(2025, 5, 1, 14, 3, 9, tzinfo=dt.UTC))
    '14:03:09Z'
    >>> clock_text(None)
    'never'
    """
    if moment is None:
        return "never"
    return moment.astimezone(dt.UTC).strftime("%H:%M:%SZ")


def age_text(ran_at: dt.datetime | None, refresh_s: float, now: dt.datetime) -> tuple[str, bool]:
    """How old a result is, and whether it is STALE (older than two refresh intervals).

    The age is coarse on purpose (10 s steps, then whole minutes): every panel's age redrawn
    every second is most of what an idle console sends down a slow SSH link.

    >>> now = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
    >>> age_text(now - dt.timedelta(seconds=4), 30, now)
    ('age <10s', False)
    >>> age_text(now - dt.timedelta(seconds=27), 30, now)
    ('age 20s', False)
    >>> age_text(now - dt.timedelta(seconds=61), 30, now)
    ('STALE 1m', True)
    >>> age_text(now - dt.timedelta(hours=3, minutes=2, seconds=9), 3600, now)
    ('STALE 3h 2m', True)
    >>> age_text(None, 30, now)
    ('not run yet', False)
    """
    if ran_at is None:
        return "not run yet", False
    age = max(0.0, (now - ran_at).total_seconds())
    stale = is_stale(ran_at, refresh_s, now)
    if age < 10:
        shown = "<10s"
    elif age < 60:
        shown = f"{int(age // 10) * 10}s"
    else:
        shown = humanize(age // 60 * 60)
    return (f"STALE {shown}" if stale else f"age {shown}"), stale


def next_interval(current: float, direction: int) -> float:
    """The next refresh interval up (+1) or down (-1) the ladder, held within its bounds.

    >>> next_interval(30, +1), next_interval(30, -1)
    (60, 15)
    >>> next_interval(3600, +1), next_interval(1, -1)
    (3600, 1)
    >>> next_interval(45, +1), next_interval(45, -1)
    (60, 30)
    """
    if direction > 0:
        return next((i for i in INTERVALS if i > current), INTERVALS[-1])
    return next((i for i in reversed(INTERVALS) if i < current), INTERVALS[0])


def duration_ms(seconds: float | None) -> str:
    """
    >>> duration_ms(0.0123), duration_ms(2.5), duration_ms(None)
    ('12 ms', '2.5 s', '–')
    """
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
