"""`?`: every key, what it does, and for a dimmed one, why it is dimmed right now."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cutover.tui.text import clean


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close"),
        Binding("q", "dismiss", "close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """rows: (key, what it does, state: "" when available, else why not)."""
        super().__init__(classes="dialog-screen")
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _, _ in self.rows)
        text = Text()
        for key, what, state in self.rows:
            text.append(f"{key:>{width}}  ", style="bold")
            text.append(clean(what))
            if state:
                text.append(f"\n{'':>{width}}    ✗ {clean(state)}", style="dim")
            text.append("\n")
        with Vertical(classes="dialog", id="help-dialog"):
            yield Static(Text("Keys", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(text, id="help-keys")
            yield Static(
                Text(
                    "Danger is marked by words and symbols, never colour alone: ✓ PASS, "
                    "✗ FAIL, … WAIT, ‼ FIRED, ⚠ STALE. Esc closes.",
                    style="dim",
                )
            )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
