"""The three dialogs that move traffic: advance (guarded, type the percent), step back (a
reason), emergency rollback (one deliberate key). Each returns its answer with dismiss();
the app then starts the move in a worker and opens the same dialog again, attached to the
move, to stream its progress. Closing that dialog never stops the move."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Log, Static

from cutover.tui.screens.dialog import Dialog
from cutover.tui.text import clean

ROLLBACK_HINT = "ctrl+r emergency rollback works here too"

A = TypeVar("A")


class MoveScreen(Dialog[A]):
    """Shared shape: a question, then progress lines, then the result."""

    move = ""
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "close")]

    class Stop(Message):
        """The operator asks to stop the move in flight (rollback: stop retrying)."""

        def __init__(self, move: str) -> None:
            super().__init__()
            self.move = move

    def __init__(self, *, lines: Sequence[str] = (), running: bool = False) -> None:
        """`running`: the move is in flight, so this dialog shows its progress (`lines` so
        far) instead of asking."""
        super().__init__()
        self.started = running
        self.done = False
        self.lines = list(lines)

    def body(self) -> ComposeResult:
        yield from ()

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id=f"{self.move}-dialog"):
            yield from self.body()
            yield Log(id="progress", auto_scroll=True, max_lines=500)
            yield Static("", id="result")
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#progress", Log).display = False
        self.query_one("#result", Static).display = False
        for line in self.lines:
            self.add_line(line)
        self.mounted()

    def mounted(self) -> None:
        """Each dialog's own setup once its widgets exist."""

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

    def action_close(self) -> None:
        self.dismiss(None)


def all_clear(overrides: Sequence[str]) -> str:
    """What the advance dialog says of the stage's sign-offs, hold and gates: never plain
    "all clear" while a sign-off overrode a failing probe.

    >>> all_clear([])
    'Sign-offs, hold and gates: all clear.'
    >>> all_clear(["rlm_healthy (flaky RLM)"])
    'Sign-offs, hold and gates: all clear, with 1 override: rlm_healthy (flaky RLM).'
    """
    if not overrides:
        return "Sign-offs, hold and gates: all clear."
    word = "override" if len(overrides) == 1 else "overrides"
    return f"Sign-offs, hold and gates: all clear, with {len(overrides)} {word}: " + (
        "; ".join(overrides) + "."
    )


class AdvanceScreen(MoveScreen[int]):
    move = "advance"

    def __init__(
        self,
        from_percent: int,
        to_percent: int,
        to_title: str,
        how: str,
        *,
        stage_id: str = "",
        overrides: Sequence[str] = (),
        lines: Sequence[str] = (),
        running: bool = False,
        complete: bool = False,
    ) -> None:
        """`complete`: from the last stage, advancing completes the cutover."""
        super().__init__(lines=lines, running=running)
        self.complete = complete
        self.from_percent = from_percent
        self.to_percent = to_percent
        self.to_title = to_title
        self.how = how
        self.stage_id = stage_id  # the stage it advances from: it closes if that changes
        self.overrides = list(overrides)

    def body(self) -> ComposeResult:
        title = "Complete the cutover" if self.complete else "Advance"
        yield Static(Text(title, style="bold"), classes="dialog-title")
        clear = Text(clean(all_clear(self.overrides)))
        if self.overrides:
            clear.stylize("bold")
            clear = Text("⚠ ", style="bold") + clear
        if self.complete:
            what = (
                f"Complete the cutover at {self.to_percent} % ({clean(self.to_title)}): "
                "the last stage's guards pass and the journal records that it is done.\n"
            )
        else:
            what = f"Traffic {self.from_percent} % → {self.to_percent} % ({clean(self.to_title)})\n"
        yield Static(Text(f"{what}{clean(self.how)}\n") + clear)
        go = "complete the cutover" if self.complete else "go ahead"
        yield Static(f"Type {self.to_percent} and press Enter to {go}; Esc cancels.", id="ask")
        yield Input(placeholder=f"type {self.to_percent}", id="confirm", restrict=r"[0-9]*")

    def mounted(self) -> None:
        confirm = self.query_one("#confirm", Input)
        if self.started:
            # Started: nothing is asked any more (it once kept offering "Type 10 and press
            # Enter" after the advance had ended, even under a rollback to 0 %).
            confirm.disabled = True
            confirm.display = False
            self.query_one("#ask", Static).update("Started: its lines follow; Esc closes.")
        else:
            confirm.focus()

    def finish(self, ok: bool, summary: str) -> None:
        super().finish(ok, summary)
        self.query_one("#ask", Static).display = False
        self.query_one("#confirm", Input).display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.started:
            return
        if self.stale:
            self.notify(self.stale, severity="warning", markup=False)
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
        self.dismiss(int(typed))


class StepBackScreen(MoveScreen[str]):
    move = "stepback"

    def __init__(
        self,
        from_percent: int,
        to_percent: int,
        to_title: str,
        *,
        lines: Sequence[str] = (),
        running: bool = False,
    ) -> None:
        super().__init__(lines=lines, running=running)
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

    def mounted(self) -> None:
        reason = self.query_one("#reason", Input)
        if self.started:
            reason.disabled = True
        else:
            reason.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.started:
            return
        reason = event.value.strip()
        if not reason:
            self.notify("step back needs a reason", severity="warning")
            return
        self.dismiss(reason)


ASK = "Press y to roll back now · n or Esc cancels"
ASK_REVERTS = (
    "Press y to roll back by PATCH + redeploy · i to roll back instantly anyway, "
    "reverting those commits · n or Esc cancels"
)
WATCH = "x stops retrying · Esc closes this dialog (the rollback goes on)"
INSTANT = "instant"  # what the dialog answers when `i` takes the instant way regardless


class RollbackScreen(MoveScreen[bool | str]):
    """Confirmed with `y` only: Enter and Escape are what fingers press without thinking.
    `y` takes the instant way when it reverts no commit; when it would, the dialog says
    which and `i` takes it anyway."""

    move = "rollback"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "roll back now"),
        Binding("i", "instant", "roll back instantly, reverting commits"),
        Binding("n", "close", "cancel"),
        Binding("escape", "close", "cancel / close"),
        Binding("x", "stop", "stop retrying"),
    ]

    def __init__(
        self,
        from_percent: int,
        landing_title: str,
        why: str,
        *,
        lines: Sequence[str] = (),
        running: bool = False,
    ) -> None:
        super().__init__(lines=lines, running=running)
        self.from_percent = from_percent
        self.landing_title = landing_title
        self.why = why
        self.reverts = False  # the instant way would take back commits: `i` offers it

    def body(self) -> ComposeResult:
        yield Static(Text("‼ EMERGENCY ROLLBACK ‼", style="bold"), classes="dialog-title")
        yield Static(
            Text(
                f"Traffic {self.from_percent} % → 0 % ({clean(self.landing_title)}).\n"
                "Retries until the flag reads 0 % and it is live.\n"
                + clean(self.why, newlines=True)  # one reason a line, never ↵
            )
        )
        yield Static("", id="rollback-how")
        yield Static(Text(WATCH if self.started else ASK, style="bold"), id="rollback-keys")

    def mounted(self) -> None:
        # Shown once the platform has said how (a flag without a plan never says).
        self.query_one("#rollback-how", Static).display = False

    def show_plan(self, says: str, *, reverts: bool) -> None:
        """How the rollback would reach traffic (instant or by a build), once the platform
        has been asked; with commits it would revert, `y` builds and `i` goes instant."""
        if self.started or self.done or not self.is_attached:
            return  # answered, or closed, before the platform did
        self.reverts = reverts
        mark = "⚠ " if reverts else ""
        how = self.query_one("#rollback-how", Static)
        how.update(Text(f"{mark}How: {clean(says)}"))
        how.display = True
        keys = self.query_one("#rollback-keys", Static)
        keys.update(Text(ASK_REVERTS if reverts else ASK, style="bold"))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The keys shown are the keys that do something now.
        if action == "confirm":
            return not self.started
        if action == "instant":
            return not self.started and self.reverts
        if action == "stop":
            return self.started and not self.done
        return True

    def finish(self, ok: bool, summary: str) -> None:
        super().finish(ok, summary)
        # Nothing is left to press y or x for: the question goes, the answer stays.
        self.query_one("#rollback-keys", Static).display = False
        self.refresh_bindings()

    def action_confirm(self) -> None:
        if not self.started:
            self.dismiss(True)

    def action_instant(self) -> None:
        if not self.started and self.reverts:
            self.dismiss(INSTANT)

    def action_stop(self) -> None:
        if self.started and not self.done:
            self.post_message(self.Stop(self.move))
