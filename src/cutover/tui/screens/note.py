"""A question answered with a note that goes in the journal: raising or clearing a manual
trigger, accepting a gap in the evidence. The note is required (it is what later readers
see); Enter answers with it, Esc cancels."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from cutover.tui.screens.dialog import Dialog
from cutover.tui.screens.moves import ROLLBACK_HINT
from cutover.tui.text import clean


class NoteScreen(Dialog[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        title: str,
        body: str,
        *,
        placeholder: str,
        enter: str,
        about: tuple = (),
        alarming: bool = False,
    ) -> None:
        """`about`: what the question is about, ("gap", stage, visit) or ("raise" | "clear",
        trigger id): the app closes the dialog when that changes under it."""
        super().__init__()
        self.title_text = title
        self.body = body
        self.placeholder = placeholder
        self.enter = enter
        self.about = about
        self.alarming = alarming

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="note-dialog"):
            yield Static(Text(clean(self.title_text), style="bold"), classes="dialog-title")
            yield Static(Text(clean(self.body, newlines=True)))
            yield Input(placeholder=self.placeholder, id="note")
            yield Static(
                Text(f"Enter {self.enter} (a note is required) · Esc cancels", style="bold")
            )
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()
        if self.alarming:
            self.query_one("#note-dialog").add_class("-alarming")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.stale:
            self.notify(self.stale, severity="warning", markup=False)
            return
        note = event.value.strip()
        if not note:
            self.notify("write a note: it goes in the journal", severity="warning")
            return
        self.dismiss(note)

    def action_cancel(self) -> None:
        self.dismiss(None)
