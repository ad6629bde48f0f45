"""Enter on any row: the whole of it, unclipped (k9s's describe, lazygit's detail). A panel's
row, a step or a trigger: every value on its own line, as long as it is, made inert. A
clipped cell once read as another value (`RAISED` as `RAI`, `=10` as `=1`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean


class DetailScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close"),
        Binding("enter", "close", "close", show=False),
    ]

    def __init__(self, title: str, fields: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)

    def dialog(self) -> ComposeResult:
        width = max((len(name) for name, _ in self.fields), default=0)
        body = Text()
        for index, (name, value) in enumerate(self.fields):
            if index:
                body.append("\n")
            body.append(f"{clean(name):>{width}}  ", style="bold")
            lines = clean(value, newlines=True).split("\n")
            body.append(lines[0])
            for line in lines[1:]:
                body.append("\n" + " " * (width + 2) + line)
        with Vertical(classes="dialog wide", id="detail-dialog"):
            yield Static(Text(clean(self.title_text), style="bold"), classes="dialog-title")
            with VerticalScroll(id="detail-body"):
                yield Static(body, id="detail-text")
            yield Static(Text("Esc or Enter closes", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
