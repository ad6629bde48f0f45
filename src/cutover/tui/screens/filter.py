"""`/`: what to look for. Typed text narrows the focused panel's rows, or, from the runbook
pane, the panels shown; Enter applies it, an empty line shows everything again, Esc leaves
things as they were."""

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


class FilterScreen(Dialog[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, what: str, current: str) -> None:
        super().__init__()
        self.what = what  # "rows of Success rate", "panels"
        self.current = current

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="filter-dialog"):
            yield Static(Text(clean(f"Filter the {self.what}"), style="bold"))
            yield Input(value=self.current, placeholder="text to look for", id="filter")
            yield Static(
                Text("Enter applies (empty: show all) · Esc leaves it as it was", style="bold")
            )
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
