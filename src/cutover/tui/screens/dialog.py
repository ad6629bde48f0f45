"""What every dialog shares: it opens over the console without hiding what must always be
seen. The header, the trigger banner, the gates/action line and the keys are composed on
the dialog's own screen, and the app keeps every screen's copies live."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.message import Message
from textual.screen import ModalScreen

from cutover.tui.widgets.header import live_bottom, live_top

T = TypeVar("T")


class Dialog(ModalScreen[T]):
    class Opened(Message):
        """A dialog appeared: fill its live lines now, not at the next tick."""

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        yield from live_top()
        yield from self.dialog()
        yield from live_bottom()

    def dialog(self) -> ComposeResult:
        """The dialog's own part, centred between the live lines."""
        yield from ()

    def _on_mount(self) -> None:
        self.post_message(self.Opened())

    def close_because(self, why: str) -> bool:
        """What the dialog asked about no longer holds (the stage changed under it): close
        when on top, else refuse its answer with `why`. True when it closed."""
        if self.app.screen is self:
            self.dismiss(None)
            return True
        self.stale = why
        return False

    stale = ""  # why an answer is refused now: the dialog asks about what has changed
