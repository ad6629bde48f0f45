"""`j`: the audit trail, newest first, filtered by whatever you type (kind, actor, step…).
A sign-off that overrode a failing probe says so in its own column, not only in details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from cutover.record.journal import Event
from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean

OVERRIDE = "⚠ OVERRIDE"


def event_row(event: Event) -> tuple[str, str, str, str, str]:
    details = " ".join(
        f"{k}={v}" for k, v in event.fields.items() if v not in (None, "") and k != "override"
    )
    kind = clean(event.kind)
    if event.get("override"):
        kind += f" {OVERRIDE}"
    return (
        str(event.seq),
        event.ts.strftime("%Y-%m-%d %H:%M:%SZ"),
        clean(event.actor, max_len=40),
        kind,
        clean(details, max_len=300),
    )


class JournalScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "close")]

    def __init__(self, events: Sequence[Event], warnings: Sequence[str]) -> None:
        super().__init__()
        self.rows = [event_row(e) for e in reversed(events)]
        self.last_seq = events[-1].seq if events else 0
        self.warnings = list(warnings)

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="journal-dialog"):
            yield Static(Text("Journal (newest first)", style="bold"), classes="dialog-title")
            yield Input(placeholder="filter: kind, actor, step, anything", id="filter")
            yield DataTable(id="journal-table", cursor_type="row", zebra_stripes=True)
            note = "; ".join(self.warnings)
            yield Static(
                Text(f"⚠ {clean(note)}" if note else "Esc closes", style="dim"), id="journal-note"
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("seq", "time", "actor", "kind", "details"):
            table.add_column(label, key=label)
        self.show("")
        self.query_one("#filter", Input).focus()

    def show(self, needle: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        words = needle.lower().split()
        for row in self.rows:
            haystack = " ".join(row).lower()
            if all(w in haystack for w in words):
                cells = [Text(c) for c in row]
                if OVERRIDE in row[3]:
                    cells[3].stylize("bold")
                table.add_row(*cells, key=row[0])

    def follow(self, events: Sequence[Event]) -> None:
        """Events journaled while the view is open (by this console or any other) go on
        top, under the filter already typed: the view never shows a past that moved on."""
        new = [e for e in events if e.seq > self.last_seq]
        if not new:
            return
        self.last_seq = new[-1].seq
        self.rows[:0] = [event_row(e) for e in reversed(new)]
        if self.is_mounted:
            self.show(self.query_one("#filter", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show(event.value)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
