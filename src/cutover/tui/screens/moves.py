"""The three dialogs that move traffic: advance (guarded, type the percent), step back (a
reason), emergency rollback (one deliberate key). Each turns into the live progress of its
move once confirmed; the move itself runs in an app worker, so closing the dialog never
stops it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Log, Static

from cutover.tui.text import clean

ROLLBACK_HINT = "ctrl+r emergency rollback works here too"


class MoveScreen(ModalScreen[None]):
    """Shared shape: a question, then progress lines, then the result."""

    move = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close (the move keeps running)")
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")
        self.started = False
        self.done = False

    def body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id=f"{self.move}-dialog"):
            yield from self.body()
            yield Log(id="progress", auto_scroll=True, max_lines=500)
            yield Static("", id="result")
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#progress", Log).display = False
        self.query_one("#result", Static).display = False
        for line in self.app.move_lines_for(self.move):  # type: ignore[attr-defined]
            self.add_line(line)

    def add_line(self, line: str) -> None:
        log = self.query_one("#progress", Log)
        log.display = True
        log.write_line(clean(line))

    def finish(self, ok: bool, summary: str) -> None:
        self.done = True
        result = self.query_one("#result", Static)
        mark = "✓" if ok else "✗"
        result.update(
            Text(f"{mark} {clean(summary)}", style="bold")
            + Text("\nEsc closes this dialog.", style="dim")
        )
        result.display = True
        result.set_class(not ok, "-bad")

    def begin(self) -> None:
        self.started = True
        self.add_line(f"{self.move} started")

    def action_close(self) -> None:
        self.dismiss(None)


class AdvanceScreen(MoveScreen):
    move = "advance"

    def __init__(
        self, from_percent: int, to_percent: int, to_title: str, how: str, reason: str
    ) -> None:
        super().__init__()
        self.from_percent = from_percent
        self.to_percent = to_percent
        self.to_title = to_title
        self.how = how
        self.reason = reason

    def body(self) -> ComposeResult:
        yield Static(Text("Advance", style="bold"), classes="dialog-title")
        yield Static(
            Text(
                f"Traffic {self.from_percent} % → {self.to_percent} % ({clean(self.to_title)})\n"
                f"{clean(self.how)}\n"
                "Sign-offs, hold and gates: all clear."
            )
        )
        yield Static(f"Type {self.to_percent} and press Enter to go ahead; Esc cancels.")
        yield Input(placeholder=f"type {self.to_percent}", id="confirm", restrict=r"[0-9]*")

    def on_mount(self) -> None:
        super().on_mount()
        if self.app.move_running("advance"):  # type: ignore[attr-defined]
            self.started = True
            self.query_one("#confirm", Input).disabled = True
        else:
            self.query_one("#confirm", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.started:
            return
        typed = event.value.strip()
        if typed != str(self.to_percent):
            typed_text = clean(typed) or "nothing"
            self.notify(
                f"type {self.to_percent} exactly to advance (you typed {typed_text})",
                severity="warning",
                markup=False,
            )
            return
        event.input.disabled = True
        self.begin()
        self.app.start_advance(int(typed))  # type: ignore[attr-defined]


class StepBackScreen(MoveScreen):
    move = "stepback"

    def __init__(self, from_percent: int, to_percent: int, to_title: str) -> None:
        super().__init__()
        self.from_percent = from_percent
        self.to_percent = to_percent
        self.to_title = to_title

    def body(self) -> ComposeResult:
        yield Static(Text("Step back", style="bold"), classes="dialog-title")
        yield Static(
            Text(f"Traffic {self.from_percent} % → {self.to_percent} % ({clean(self.to_title)})")
        )
        yield Static("Why? (goes in the journal) Enter steps back; Esc cancels.")
        yield Input(placeholder="reason", id="reason")

    def on_mount(self) -> None:
        super().on_mount()
        if self.app.move_running("stepback"):  # type: ignore[attr-defined]
            self.started = True
            self.query_one("#reason", Input).disabled = True
        else:
            self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.started:
            return
        reason = event.value.strip()
        if not reason:
            self.notify("step back needs a reason", severity="warning")
            return
        event.input.disabled = True
        self.begin()
        self.app.start_stepback(reason)  # type: ignore[attr-defined]


class RollbackScreen(MoveScreen):
    """Confirmed with `y` only: Enter and Escape are what fingers press without thinking."""

    move = "rollback"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "roll back now"),
        Binding("n", "close", "cancel"),
        Binding("escape", "close", "cancel / close"),
        Binding("x", "stop", "stop retrying"),
    ]

    def __init__(self, from_percent: int, landing_title: str, why: str) -> None:
        super().__init__()
        self.from_percent = from_percent
        self.landing_title = landing_title
        self.why = why

    def body(self) -> ComposeResult:
        yield Static(Text("‼ EMERGENCY ROLLBACK ‼", style="bold"), classes="dialog-title")
        yield Static(
            Text(
                f"Traffic {self.from_percent} % → 0 % ({clean(self.landing_title)}).\n"
                f"Retries until the flag reads 0 % and it is live.\n{clean(self.why)}"
            )
        )
        yield Static(
            Text("Press y to roll back now · n or Esc cancels · x stops retrying", style="bold"),
            id="rollback-keys",
        )

    def on_mount(self) -> None:
        super().on_mount()
        if self.app.move_running("rollback"):  # type: ignore[attr-defined]
            self.started = True

    def compose(self) -> ComposeResult:
        yield from super().compose()

    def action_confirm(self) -> None:
        if self.started:
            return
        self.begin()
        self.app.start_rollback()  # type: ignore[attr-defined]

    def action_stop(self) -> None:
        if self.started and not self.done:
            self.app.stop_move("rollback")  # type: ignore[attr-defined]
