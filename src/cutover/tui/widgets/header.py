"""The header line, the critical-trigger banner and the bottom status bar: what must always
be on screen, each as a small view object rendered to plain Text (never markup)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from cutover.check import CheckReport, TriggerReport
from cutover.durations import humanize
from cutover.machine import Permission
from cutover.tui.text import VERDICT_MARK, VERDICT_STYLE, clean


@dataclass(frozen=True)
class HeaderView:
    title: str
    stage_title: str
    stage_number: int
    stage_count: int
    percent_set: int
    percent_read: int | None
    read_note: str  # "needs redeploy", "not in effect", a flag error…
    observed: float | None
    has_observed: bool
    hold_required_s: float
    hold_elapsed_s: float
    db_up: bool | None
    db_detail: str
    db_retry_in: float | None
    flag_ok: bool | None
    flag_detail: str
    paused: bool = False
    readonly: bool = False
    in_flight: str | None = None
    note: str = ""  # e.g. the demo's "holds scaled down"
    drift: str | None = None  # why traffic may not run at the stage's percent


def header_text(v: HeaderView) -> Text:
    first = Text(f"◆ {clean(v.title)}", style="bold")
    if v.note:
        first.append(f"  ({clean(v.note)})", style="italic")
    if v.readonly:
        first.append("  [READ-ONLY]", style="bold reverse")
    if v.paused:
        first.append("  ⏸ PAUSED", style="bold reverse")
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
    read = "?" if v.percent_read is None else f"{v.percent_read}"
    second.append(f" │ set {v.percent_set} % · read {read} %")
    if v.read_note:
        second.append(f" ({clean(v.read_note)})", style="bold")
    if v.has_observed:
        seen = "?" if v.observed is None else f"{v.observed:g}"
        second.append(f" · seen {seen} %")
    left = v.hold_required_s - v.hold_elapsed_s
    if v.hold_required_s <= 0:
        second.append(" │ no hold")
    elif left > 0:
        second.append(f" │ hold {humanize(left)} left of {humanize(v.hold_required_s)}")
    else:
        second.append(f" │ hold ✓ {humanize(v.hold_required_s)} done")
    return Text("\n").join([first, second])


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


def banner_text(fired: tuple[TriggerReport, ...]) -> Text:
    """The unmissable line when a critical trigger fires: words and symbols, not only red."""
    names = ", ".join(clean(t.title or t.id) for t in fired)
    text = Text(f"‼ CRITICAL TRIGGER FIRED: {names} ‼", style="bold")
    for trigger in fired:
        text.append(f"\n  {clean(trigger.id)}: {clean(trigger.judgement.reason)}")
    text.append(
        "\n  Press ctrl+r to roll back to 0 % (nothing rolls back by itself).", style="bold"
    )
    return text


class TriggerBanner(_Steady):
    def show(self, fired: tuple[TriggerReport, ...]) -> None:
        self.display = bool(fired)
        if fired:
            self.show_text(banner_text(fired))


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
        return Text(f"a advance ✓ {clean(permission.reason)}", style="bold")
    return Text(f"a advance ✗ refused: {clean(permission.reason)}", style="dim")


class StatusBar(_Steady):
    def show(self, report: CheckReport | None, has_gates: bool, permission, readonly) -> None:
        self.show_text(
            gates_text(report, has_gates) + Text("\n") + advance_text(permission, readonly)
        )
