"""The sign-off dialog: the step, who signs, an optional note; a probe step runs its probe
and needs it passing or a note that overrides it (and the dialog says it is an override)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from cutover.runbook.model import Probe, Step
from cutover.sources.probes import ProbeResult, run_probe
from cutover.tui.screens.dialog import Dialog
from cutover.tui.screens.moves import ROLLBACK_HINT
from cutover.tui.text import clean


@dataclass(frozen=True)
class SignOffAnswer:
    note: str
    override: bool
    probe: ProbeResult | None


def probe_text(result: ProbeResult) -> Text:
    """The probe's verdict and its checks, each check on its own line(s): multi-line output
    stays lines, never ↵ glyphs."""
    lines = [f"{'✓' if result.passed else '✗'} probe {clean(result.summary, newlines=True)}"]
    lines += [f"  {clean(c, newlines=True)}" for c in result.checks[:6]]
    text = Text("\n".join(lines), style="" if result.passed else "bold")
    if not result.passed:
        text.append(
            "\n⚠ OVERRIDE: the probe does not pass. Signing anyway is recorded as an "
            "override: write a note saying why.",
            style="bold reverse",
        )
    return text


class SignOffScreen(Dialog[SignOffAnswer | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        step: Step,
        stage_id: str,
        visit: int,
        stage_title: str,
        actor: str,
        probe: Probe | None,
        environ,
        against: Sequence[str] = (),
    ):
        super().__init__()
        # What the screen says against this step (its gate fails, or was never judged): it
        # is then signed only as an override with a note, as a failing probe is.
        self.against = tuple(against)
        self.step = step
        self.stage_id = stage_id
        self.visit = visit
        self.stage_title = stage_title
        self.actor = actor
        self.probe = probe
        self.environ = environ
        self.result: ProbeResult | None = None
        self.probing = False  # a probe with a side effect runs once per Enter, never twice

    def dialog(self) -> ComposeResult:
        with Vertical(classes="dialog", id="signoff-dialog"):
            yield Static(Text("Sign off", style="bold"), classes="dialog-title", id="signoff-title")
            yield Static(Text(f"{clean(self.stage_title)} · {clean(self.step.id)}", style="dim"))
            yield Static(Text(clean(self.step.text)))
            yield Static(Text(f"Signed by {clean(self.actor)}"))
            if self.against:
                yield Static(
                    Text("⚠ " + "\n⚠ ".join(clean(a, newlines=True) for a in self.against))
                    + Text("\nSigning is recorded as an OVERRIDE: say why in the note."),
                    id="against",
                )
            if self.probe is not None:
                waits = (
                    "running…"
                    if self.probe.safe
                    else f"{self.probe.method} runs when you press Enter (it is not read-only)"
                )
                yield Static(Text(f"probe {clean(self.probe.id)}: {waits}"), id="probe")
            yield Input(
                placeholder="note (optional; required to override a failing probe)", id="note"
            )
            yield Static("Enter signs · Esc cancels", id="signoff-keys")
            yield Static(Text(ROLLBACK_HINT, style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()
        if self.against:
            self._override_mode()
        # A probe that changes nothing runs at once; one with a side effect (the v1 probe
        # POSTs a test import) only on the confirming key, never for opening a dialog.
        if self.probe is not None and self.probe.safe:
            self.check_probe()

    @work(exclusive=True, group="signoff-probe", exit_on_error=False)
    async def check_probe(self, sign_with: str | None = None) -> None:
        """Run the probe; `sign_with` (the note typed when Enter ran it): sign at once when
        it passes, as a probe that ran on opening would have let the operator."""
        assert self.probe is not None
        if sign_with is not None:
            self.query_one("#probe", Static).update(Text(f"probe {clean(self.probe.id)}: running…"))
        result = await run_probe(self.probe, environ=self.environ)
        self.result = result
        self.query_one("#probe", Static).update(probe_text(result))
        if result.passed and sign_with is not None and not self.stale:
            self.dismiss(SignOffAnswer(sign_with, False, result))
            return
        if not result.passed:
            self._override_mode()

    def _override_mode(self) -> None:
        self.query_one("#signoff-title", Static).update(
            Text("Sign off as an OVERRIDE ⚠", style="bold")
        )
        self.query_one("#signoff-keys", Static).update(
            Text("Enter signs as an OVERRIDE (a note is required) · Esc cancels", style="bold")
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.stale:
            self.notify(self.stale, severity="warning", markup=False)
            return
        note = event.value.strip()
        if self.against and not note:
            self.notify(
                "the screen says otherwise: write a note to sign it as an override",
                severity="warning",
            )
            return
        if self.probe is not None:
            if self.result is None and not self.probe.safe and not self.probing:
                self.probing = True
                self.check_probe(note)  # the confirming key: now it may act
                return
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
        self.dismiss(SignOffAnswer(note, bool(self.against), self.result))

    def action_cancel(self) -> None:
        self.dismiss(None)
