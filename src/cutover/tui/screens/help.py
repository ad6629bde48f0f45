"""`?`: every key, what it does, and for a dimmed one, why it is dimmed right now (kept
current while the help is open: a hold running out or a gate passing shows at once)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean

Row = tuple[str, str, str]  # key, what it does, "" when available else why not


def keys_text(rows: list[Row]) -> Text:
    width = max(len(key) for key, _, _ in rows)
    text = Text()
    for key, what, state in rows:
        text.append(f"{key:>{width}}  ", style="bold")
        text.append(clean(what))
        if state:
            text.append(f"\n{'':>{width}}    ✗ {clean(state)}", style="dim")
        text.append("\n")
    return text


class HelpScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]

    def __init__(self, rows: list[Row]) -> None:
        super().__init__()
        self.rows = rows

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Static(Text("Keys", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(keys_text(self.rows), id="help-keys")
            yield Static(
                Text(
                    "Danger is marked by words and symbols, never colour alone: ✓ PASS, "
                    "✗ FAIL, … WAIT, ‼ FIRED, ? UNKNOWN, ⚠ STALE. Esc closes.",
                    style="dim",
                )
            )

    def show_rows(self, rows: list[Row]) -> None:
        """The app's latest reasons; repaints only when they changed."""
        if rows != self.rows:
            self.rows = rows
            self.query_one("#help-keys", Static).update(keys_text(rows))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
