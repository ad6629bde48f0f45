"""What must always be on screen, on the console and under every dialog: the header lines,
the critical-trigger banner, the gates/action line and the keys. Each is a small view object
rendered to plain Text (never markup); the app updates every screen's copies."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from cutover.judge.alarms import Alarm
from cutover.judge.check import CheckReport
from cutover.judge.verdicts import Verdict
from cutover.runbook.durations import humanize
from cutover.traffic.machine import Permission
from cutover.tui.text import VERDICT_MARK, VERDICT_STYLE, clean, ordinal
from cutover.tui.widgets.keybar import KeyBar


@dataclass(frozen=True)
class HeaderView:
    title: str
    stage_title: str
    stage_number: int
    stage_count: int
    percent_set: int
    percent_read: int | None
    read_note: str  # "needs redeploy", "not in effect", a flag error…
    observed: str | None  # the observed share in words (text.observed_text), None: none
    hold: str  # the hold by the evidence, in a few words (time_text.hold_line)
    db_up: bool | None
    db_detail: str
    db_retry_in: float | None
    flag_ok: bool | None
    flag_detail: str
    paused_for_s: float | None = None  # None: not paused
    readonly: bool = False
    in_flight: str | None = None
    note: str = ""  # e.g. the demo's "holds scaled down"
    drift: str | None = None  # why traffic may not run at the stage's percent
    times_in_stage: int = 1  # how many times the cutover has entered this stage
    # Why the hold restarted, what holds it back, gaps accepted: a line each, under the rest.
    hold_notes: tuple[str, ...] = ()
    completed: str | None = None  # "CUTOVER COMPLETE (alice, 09:00Z)" once it is done
    # Production pinned to an earlier deployment by an instant rollback: new builds do not
    # go live until the next advance promotes one.
    pinned: str | None = None

    @property
    def paused(self) -> bool:
        return self.paused_for_s is not None


def header_text(v: HeaderView) -> Text:
    first = Text(f"◆ {clean(v.title)}", style="bold")
    if v.note:
        first.append(f"  ({clean(v.note)})", style="italic")
    if v.readonly:
        first.append("  [READ-ONLY]", style="bold reverse")
    if v.paused_for_s is not None:
        first.append(f"  ⏸ PAUSED {humanize(v.paused_for_s)}", style="bold reverse")
    if v.in_flight:
        first.append(f"  ⟳ {v.in_flight} in flight", style="bold reverse")
    if v.drift:
        first.append(f"  ⚠ DRIFT: {clean(v.drift, max_len=160)}", style="bold reverse")

    db = {True: "DB ✓", False: "DB ✗ down", None: "DB …"}[v.db_up]
    if v.db_up is False and v.db_retry_in is not None:
        db += f" (retry {humanize(v.db_retry_in)})"
    flag = {True: "flag ✓", False: "flag ✗", None: "flag …"}[v.flag_ok]
    second = Text()
    second.append(
        f"{db} · {flag} │ ", style="bold" if v.db_up is False or v.flag_ok is False else ""
    )
    second.append(f"{v.stage_number}/{v.stage_count} {clean(v.stage_title)}", style="bold")
    if v.times_in_stage > 1:
        second.append(f" ({ordinal(v.times_in_stage)} time in this stage)")
    if v.completed:
        second.append(f" │ ✓ {clean(v.completed)}", style="bold")
    else:
        second.append(f" │ {clean(v.hold)}")

    read = "?" if v.percent_read is None else f"{v.percent_read}"
    third = Text(f"set {v.percent_set} % · read {read} %")
    if v.read_note:
        third.append(f" ({clean(v.read_note)})", style="bold")
    if v.pinned:
        third.append(f" · production pinned to {clean(v.pinned)} (an advance promotes)")
    if v.observed is not None:
        third.append(f" · {clean(v.observed)}")
    lines = [first, second, third]
    if not v.completed:
        lines += [Text(f"  ↻ {clean(note, max_len=300)}", style="dim") for note in v.hold_notes]
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    joined = Text("\n").join(lines)
    joined.no_wrap, joined.overflow = True, "ellipsis"
    return joined


class _Steady(Static):
    """A Static that repaints only when its text changes: the console ticks every second,
    and an unchanged line resent every second is bytes a slow SSH link pays for nothing.

    A line that never wraps (`WRAPS` False) is as tall as its line count: while that stays,
    a new text is repainted in place, without laying the whole screen out again (that
    layout, every second, was most of what the console's tick cost)."""

    WRAPS = True
    _shown: Text | None = None
    _height: tuple[int, int] | None = None  # (width, lines) the text shown took

    def show_text(self, text: Text) -> None:
        if text != self._shown:
            before, self._shown = self._height, text
            self._height = self._lines(text)
            same_height = before is not None and before == self._height
            self.update(text, layout=not same_height)

    def _lines(self, text: Text) -> tuple[int, int] | None:
        """How many lines `text` takes at this width (None: not laid out yet). A wrapping
        line is wrapped here as it will be drawn: a banner whose countdown changes every
        second keeps its height, and laying the screen out for it cost ~0.1 s a second."""
        if not self.WRAPS:
            return (0, text.plain.count("\n") + 1)
        width = self.content_region.width
        if width <= 0:
            return None
        return (width, len(text.wrap(self.app.console, width)))


class StatusHeader(_Steady):
    WRAPS = False  # text-wrap: nowrap (cutover.tcss)

    def show(self, view: HeaderView) -> None:
        self.show_text(header_text(view))


# (the trigger's title, what the console remembers of it)
Shown = tuple[str, Alarm]


def banner_text(shown: Sequence[Shown], notices: Sequence[str] = ()) -> Text:
    """The unmissable lines while a critical trigger has fired (and no fresh evaluation has
    cleared it since) or cannot be evaluated: words and symbols, not only red. Below them,
    the lesser news (`notices`): a high trigger's deadline, a medium one holding the stage,
    a trigger waiting on `for`."""
    if not shown:
        return Text("\n").join(
            Text(clean(n, max_len=300), style="bold" if n.startswith("‼") else "") for n in notices
        )
    fired = [clean(title) for title, alarm in shown if alarm.latched]
    unknown = [clean(title) for title, alarm in shown if not alarm.latched]
    if fired:
        text = Text(f"‼ CRITICAL TRIGGER FIRED: {', '.join(fired)} ‼", style="bold")
        if unknown:
            text.append(f"\n? and UNKNOWN (cannot be evaluated): {', '.join(unknown)}")
    else:
        text = Text(
            f"? CRITICAL TRIGGER UNKNOWN: {', '.join(unknown)}: it cannot be evaluated",
            style="bold",
        )
    for _, alarm in shown:
        text.append(f"\n  {clean(alarm.trigger_id)}: {clean(alarm.describe())}")
    if fired:
        text.append(
            "\n  Press ctrl+r to roll back to 0 % (nothing rolls back by itself).", style="bold"
        )
    else:
        text.append(
            "\n  Nothing tells whether it holds: find out, or press ctrl+r to roll back to 0 %.",
            style="bold",
        )
    for notice in notices:
        text.append(f"\n{clean(notice, max_len=300)}")
    return text


class TriggerBanner(_Steady):
    """Shrinking waits: a banner that loses a line keeps its height (a blank line at the end)
    for KEEP_S after it was last that tall. Under load, queries go stale and fresh by turns
    and a trigger's UNKNOWN line comes and goes every few seconds; each change of height
    laid the whole screen out again (~0.1 s of CPU each on two busy cores), which made the
    queries later still. Growing, appearing and going away are at once."""

    KEEP_S = 30.0
    clock = staticmethod(time.monotonic)
    _tall: tuple[int, float] = (0, 0.0)  # the most lines shown lately, and when

    def show(self, shown: Sequence[Shown], notices: Sequence[str] = ()) -> None:
        self.display = bool(shown or notices)
        if shown or notices:
            self.set_class(bool(shown) and not any(a.latched for _, a in shown), "-unknown")
            self.set_class(not shown, "-notice")
            self.show_text(self._kept_tall(banner_text(shown, notices)))
        else:
            self._tall = (0, 0.0)

    def _kept_tall(self, text: Text) -> Text:
        lines, now = text.plain.count("\n") + 1, self.clock()
        tallest, since = self._tall
        if lines >= tallest or now - since > self.KEEP_S:
            self._tall = (lines, now)
            return text
        return text + Text("\n" * (tallest - lines))


def chain_text(message: str) -> Text:
    """The banner while the journal's hash chain is broken: what and where (the message
    names the line), and what that refuses."""
    return Text("‼ JOURNAL CHAIN BROKEN ‼", style="bold") + Text(f"\n{clean(message, max_len=400)}")


class JournalBanner(_Steady):
    """Shown while the journal this console replays is not what cutover wrote."""

    def show(self, message: str | None) -> None:
        self.display = message is not None
        if message is not None:
            self.show_text(chain_text(message))


def gates_text(report: CheckReport | None, stage_has_gates: bool, width: int | None = None) -> Text:
    """Every gate with its verdict; when that does not fit in `width`, a summary that still
    names each gate that does not pass ("5 ✓ · 1 WAIT v2_success · 1 ✗ no_stuck"), then
    counts alone: the line is never cut mid-verdict into something that reads otherwise.

    >>> from cutover.judge.check import GateReport
    >>> from cutover.judge.verdicts import Judgement
    >>> from cutover.runbook.model import Comparison
    >>> def gate(i, holds):
    ...     return GateReport(i, "", Comparison("q", ">=", 1), Judgement(holds, 1.0, None, ""))
    >>> r = CheckReport("s", None, tuple(gate(f"g{i}", True) for i in range(5))
    ...                 + (gate("v2_success", None), gate("no_stuck", False)), ())
    >>> print(gates_text(r, True, 50))
    gates: 5 ✓ · 1 WAIT v2_success · 1 ✗ no_stuck
    >>> print(gates_text(r, True, 30))
    gates: 5 ✓ · 1 WAIT · 1 ✗
    """
    line = Text("gates: ", style="bold")
    if not stage_has_gates:
        return line + Text("none in this stage")
    if report is None:
        return line + Text("… not checked yet")
    full = line.copy()
    for index, gate in enumerate(report.gates):
        if index:
            full.append(" · ")
        full.append(f"{VERDICT_MARK[gate.verdict]} {clean(gate.id)}", VERDICT_STYLE[gate.verdict])
    if width is None or full.cell_len <= width:
        return full
    named, counted = line.copy(), line.copy()
    short = {Verdict.PASS: "✓", Verdict.WAIT: "WAIT", Verdict.FAIL: "✗"}
    parts = 0
    for verdict in (Verdict.PASS, Verdict.WAIT, Verdict.FAIL):
        ids = [clean(g.id) for g in report.gates if g.verdict is verdict]
        if not ids:
            continue
        sep = " · " if parts else ""
        parts += 1
        style = VERDICT_STYLE[verdict]
        names = "" if verdict is Verdict.PASS else " " + ", ".join(ids)
        named.append(f"{sep}{len(ids)} {short[verdict]}{names}", style)
        counted.append(f"{sep}{len(ids)} {short[verdict]}", style)
    return named if named.cell_len <= width else counted


def advance_text(permission: Permission | None, readonly: bool, completed: str = "") -> Text:
    """The action line: what advance does now, or why not; a completed cutover says so.

    >>> print(advance_text(Permission(False, "1 sign-off left"), False))
    advance ✗ refused: 1 sign-off left
    >>> print(advance_text(None, False, "CUTOVER COMPLETE (alice, 09:00Z)"))
    ✓ CUTOVER COMPLETE (alice, 09:00Z): nothing left to advance
    """
    if completed:
        return Text(f"✓ {clean(completed)}: nothing left to advance", style="bold")
    if readonly:
        return Text("read-only: no action changes anything", style="dim")
    if permission is None:
        return Text("advance: … waiting for the first check", style="dim")
    if permission.allowed:
        return Text(f"advance ✓ {clean(permission.reason)}", style="bold")
    return Text(f"advance ✗ refused: {clean(permission.reason)}", style="dim")


class StatusBar(_Steady):
    """The decision surface: the gates line, then the advance line, pinned at the bottom;
    the gates are summarised when they do not fit, so the advance line never moves."""

    WRAPS = False  # two lines, each no_wrap
    _last: tuple | None = None
    # Its width as the last resize said. Not self.size: asking a widget its size makes the
    # compositor lay out every widget of the screen (on screen or not) whenever anything
    # moved since, and this is drawn every second: that was most of the console's layouts.
    _width: int | None = None

    def show(
        self, report: CheckReport | None, has_gates: bool, permission, readonly, completed=""
    ) -> None:
        self._last = (report, has_gates, permission, readonly, completed)
        # Before its first resize (the first frames), asked once: nothing is laid out yet.
        width = self._width if self._width is not None else (self.size.width or None)
        line = (
            gates_text(report, has_gates, width)
            + Text("\n")
            + advance_text(permission, readonly, completed)
        )
        line.no_wrap, line.overflow = True, "ellipsis"
        self.show_text(line)

    def on_resize(self, event: events.Resize) -> None:
        # The event gives the outer size; the text fits inside the padding and border.
        self._width = max(0, event.size.width - self.styles.gutter.width) or None
        if self._last is not None:
            self.show(*self._last)


def live_top() -> Iterator[Widget]:
    """The top of every screen: the header, and the banner under it."""
    with Vertical(id="live-top"):
        yield StatusHeader(id="header")
        yield TriggerBanner(id="banner")
        yield JournalBanner(id="journal-banner")


def live_bottom() -> Iterator[Widget]:
    """The bottom of every screen: the gates/action line and the keys."""
    with Vertical(id="live-bottom"):
        yield StatusBar(id="status")
        yield KeyBar(compact=True, show_command_palette=False)
