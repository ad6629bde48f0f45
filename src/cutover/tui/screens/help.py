"""`?`: every key, what it does, and for a dimmed one, why it is dimmed right now; where the
hold and the triggers stand now; and how time works (kept current while the help is open:
a hold running out or a gate passing shows at once)."""

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

TIME_HELP = (
    (
        "Hold",
        "A stage's hold is met when every gate of the stage has been PASS, by the "
        "evidence, for the whole hold: not time in the stage. A FAIL, a WAIT, or a gap between "
        "two evaluations longer than the stage's max_gap (default 1h) restarts it; the header "
        "says why and since when.",
    ),
    (
        "Evidence",
        "Every evaluation is recorded beside the journal (this console's, `check`'s "
        "and the watcher's). Close the console and nothing evaluates: the hold did not hold. "
        "`cutover watch` keeps evidence while nobody has the console open.",
    ),
    (
        "Gaps",
        "A gap nobody watched restarts the hold. If it is understood (a planned "
        "reboot), g accepts it with a note (`cutover accept-gap`): the hold counts across it, "
        "and the note is shown with the hold from then on.",
    ),
    (
        "for",
        "A trigger with `for` fires only once its condition has held that long by the "
        'evidence; until then it is ◔ PENDING ("pending 2h 10m of 6h").',
    ),
    (
        "Severity",
        "critical: roll back now (banner, bell, blocks advance). high: roll back by "
        "its deadline (respond_within) unless it clears or, if manual, is cleared with a note. "
        "medium: extend monitoring (it holds the stage: the hold cannot complete).",
    ),
    (
        "Manual",
        "Manual triggers (user complaints, an OOM, corrupted data) have no query: a "
        "person raises one with t and a note (`cutover raise`); raised, it acts exactly like a "
        "fired trigger of its severity until cleared with t and a note (`cutover clear`).",
    ),
    (
        "End",
        "From the last stage, a completes the cutover (type its percent): journaled, no "
        "flag touched.",
    ),
)


def now_text(now_lines: list[str]) -> Text:
    """Where the hold and the triggers stand now."""
    text = Text("Now\n", style="bold")
    for line in now_lines:
        text.append(f"  {clean(line, max_len=300)}\n")
    return text


def time_text() -> Text:
    """How time works: holds over evidence, gaps, `for`, severities, manual triggers."""
    text = Text("\nTime\n", style="bold")
    for name, words in TIME_HELP:
        text.append(f"  {name}: ", style="bold")
        text.append(f"{words}\n")
    return text


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

    def __init__(self, rows: list[Row], now_lines: list[str] | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.now_lines = now_lines or []

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            # How to leave it, at the top: the last line is cut when the help is taller
            # than the terminal (a banner above it, a short window).
            yield Static(Text("Help · Esc closes", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(now_text(self.now_lines), id="help-now")
                yield Static(keys_text(self.rows), id="help-keys")
                yield Static(time_text(), id="help-time")
            yield Static(
                Text(
                    "Danger is marked by words and symbols, never colour alone: ✓ PASS, "
                    "✗ FAIL, … WAIT, ‼ FIRED, ? UNKNOWN, ⚠ STALE.",
                    style="dim",
                )
            )

    def show_rows(self, rows: list[Row]) -> None:
        """The app's latest reasons; repaints only when they changed."""
        if rows != self.rows:
            self.rows = rows
            self.query_one("#help-keys", Static).update(keys_text(rows))

    def show_now(self, lines: list[str]) -> None:
        if lines != self.now_lines:
            self.now_lines = lines
            self.query_one("#help-now", Static).update(now_text(lines))

    def on_screen_resume(self) -> None:
        # Kept between openings (the app installs it): its live lines are filled on every
        # opening, not only the first (Dialog posts Opened when mounted).
        if self.is_mounted:
            self.post_message(self.Opened())

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
