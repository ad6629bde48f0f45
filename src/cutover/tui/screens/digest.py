"""While you were away: what changed since this operator last had the console open (other
people's actions, verdict flips, fired triggers, gaps, the hold with an ETA, how much more
data a waiting gate needs). Shown once at start when something changed; Esc closes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from cutover.judge.digest import Section
from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean


def digest_text(sections: Sequence[Section]) -> Text:
    text = Text()
    for index, section in enumerate(sections):
        if index:
            text.append("\n")
        text.append(f"{clean(section.title)}\n", style="bold")
        for line in section.lines:
            text.append(f"  {clean(line, max_len=300)}\n")
    return text


class DigestScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "close"),
        Binding("enter", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]

    def __init__(self, heading: str, sections: Sequence[Section]) -> None:
        super().__init__()
        self.heading = heading
        self.sections = list(sections)

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="digest-dialog"):
            yield Static(Text(clean(self.heading), style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(digest_text(self.sections), id="digest-text")
            yield Static(
                Text("Esc or Enter closes · `cutover digest` prints it again", style="dim")
            )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
