"""What must always be on screen, on the console and under every dialog: the header lines,
the critical-trigger banner, the gates/action line and the keys. Each is a small view object
rendered to plain Text (never markup); the app updates every screen's copies."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Footer, Static

from cutover.alarms import Alarm
from cutover.check import CheckReport
from cutover.durations import humanize
from cutover.machine import Permission
from cutover.tui.text import VERDICT_MARK, VERDICT_STYLE, clean, ordinal


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
    hold_required_s: float
    hold_elapsed_s: float
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

    @property
    def paused(self) -> bool:
        return self.paused_for_s is not None


def hold_text(required_s: float, elapsed_s: float) -> str:
    """The stage's hold: what is left, or done (never elapsed time beyond the hold).

    >>> hold_text(0, 5), hold_text(48, 20), hold_text(48, 124)
    ('no hold', 'hold 28s left of 48s', 'hold ✓ 48s done')
    """
    if required_s <= 0:
        return "no hold"
    left = required_s - elapsed_s
    if left > 0:
        return f"hold {humanize(left)} left of {humanize(required_s)}"
    return f"hold ✓ {humanize(required_s)} done"


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
    second.append(f" │ {hold_text(v.hold_required_s, v.hold_elapsed_s)}")

    read = "?" if v.percent_read is None else f"{v.percent_read}"
    third = Text(f"set {v.percent_set} % · read {read} %")
    if v.read_note:
        third.append(f" ({clean(v.read_note)})", style="bold")
    if v.observed is not None:
        third.append(f" · {clean(v.observed)}")
    for line in (first, second, third):
        line.no_wrap, line.overflow = True, "ellipsis"
    return Text("\n").join([first, second, third])


class _Steady(Static):
    """A Static that repaints only when its text changes: the console ticks every second,
    and an unchanged line resent every second is bytes a slow SSH link pays for nothing."""

    _shown: Text | None = None

    def show_text(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text)


class StatusHeader(_Steady):
    def show(self, view: HeaderView) -> None:
        self.show_text(header_text(view))


# (the trigger's title, what the console remembers of it)
Shown = tuple[str, Alarm]


def banner_text(shown: Sequence[Shown]) -> Text:
    """The unmissable lines while a critical trigger has fired (and no fresh evaluation has
    cleared it since) or cannot be evaluated: words and symbols, not only red."""
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
    return text


class TriggerBanner(_Steady):
    def show(self, shown: Sequence[Shown]) -> None:
        self.display = bool(shown)
        if shown:
            self.set_class(not any(a.latched for _, a in shown), "-unknown")
            self.show_text(banner_text(shown))


def gates_text(report: CheckReport | None, stage_has_gates: bool) -> Text:
    line = Text("gates: ", style="bold")
    if not stage_has_gates:
        return line + Text("none in this stage")
    if report is None:
        return line + Text("… not checked yet")
    for index, gate in enumerate(report.gates):
        if index:
            line.append(" · ")
        line.append(f"{VERDICT_MARK[gate.verdict]} {clean(gate.id)}", VERDICT_STYLE[gate.verdict])
    return line


def advance_text(permission: Permission | None, readonly: bool) -> Text:
    if readonly:
        return Text("read-only: no action changes anything", style="dim")
    if permission is None:
        return Text("advance: … waiting for the first check", style="dim")
    if permission.allowed:
        return Text(f"advance ✓ {clean(permission.reason)}", style="bold")
    return Text(f"advance ✗ refused: {clean(permission.reason)}", style="dim")


class StatusBar(_Steady):
    def show(self, report: CheckReport | None, has_gates: bool, permission, readonly) -> None:
        line = gates_text(report, has_gates) + Text("\n") + advance_text(permission, readonly)
        line.no_wrap, line.overflow = True, "ellipsis"
        self.show_text(line)


def live_top() -> Iterator[Widget]:
    """The top of every screen: the header, and the banner under it."""
    with Vertical(id="live-top"):
        yield StatusHeader(id="header")
        yield TriggerBanner(id="banner")


def live_bottom() -> Iterator[Widget]:
    """The bottom of every screen: the gates/action line and the keys."""
    with Vertical(id="live-bottom"):
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)
