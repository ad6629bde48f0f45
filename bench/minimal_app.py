"""The floor for key → screen: a Textual app that does nothing but open a help screen on `?`
(and close it on Escape), in the same terminal as the console. What is left of the console's
latency above this is the console's own.

Run by bench/console.py inside tmux; not a benchmark by itself.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static


class Help(ModalScreen[None]):
    BINDINGS = [("escape", "app.pop_screen", "close")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        yield Static("Keys\n\nSeverity: critical, high, medium. Esc closes.")


class Minimal(App[None]):
    BINDINGS = [("question_mark", "help", "help"), ("q", "quit", "quit")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        yield Static("minimal: press ? for help")

    def action_help(self) -> None:
        self.push_screen(Help())


if __name__ == "__main__":
    Minimal().run()
