"""The sign-off dialog: the step, who signs, an optional note; a probe step runs its probe
and needs it passing or a note that overrides it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cutover.model import Probe, Step
from cutover.probes import ProbeResult, run_probe
from cutover.tui.screens.moves import ROLLBACK_HINT
from cutover.tui.text import clean


@dataclass(frozen=True)
class SignOffAnswer:
    note: str
    override: bool
    probe: ProbeResult | None


class SignOffScreen(ModalScreen[SignOffAnswer | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, step: Step, stage_title: str, actor: str, probe: Probe | None, environ):
        super().__init__(classes="dialog-screen")
        self.step = step
        self.stage_title = stage_title
        self.actor = actor
        self.probe = probe
        self.environ = environ
        self.result: ProbeResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="signoff-dialog"):
            yield Static(Text("Sign off", style="bold"), classes="dialog-title")
            yield Static(Text(f"{clean(self.stage_title)} · {clean(self.step.id)}", style="dim"))
            yield Static(Text(clean(self.step.text)))
            yield Static(Text(f"Signed by {clean(self.actor)}"))
            if self.probe is not None:
                yield Static(Text(f"probe {clean(self.probe.id)}: running…"), id="probe")
            yield Input(
                placeholder="note (optional; required to override a failing probe)", id="note"
            )
            yield Static("Enter signs · Esc cancels", id="signoff-keys")
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()
        if self.probe is not None:
            self.check_probe()

    @work(exclusive=True, group="signoff-probe", exit_on_error=False)
    async def check_probe(self) -> None:
        assert self.probe is not None
        result = await run_probe(self.probe, environ=self.environ)
        self.result = result
        lines = [f"{'✓' if result.passed else '✗'} probe {result.summary}"]
        lines += [f"  {c}" for c in result.checks[:6]]
        if not result.passed:
            lines.append("Signing anyway is an override: write a note saying why.")
        self.query_one("#probe", Static).update(
            Text(clean("\n".join(lines)), style="" if result.passed else "bold")
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        note = event.value.strip()
        if self.probe is not None:
            if self.result is None:
                self.notify("the probe is still running; wait for its result", severity="warning")
                return
            if not self.result.passed:
                if not note:
                    self.notify(
                        "the probe does not pass: write a note to sign it as an override",
                        severity="warning",
                    )
                    return
                self.dismiss(SignOffAnswer(note, True, self.result))
                return
        self.dismiss(SignOffAnswer(note, False, self.result))

    def action_cancel(self) -> None:
        self.dismiss(None)
