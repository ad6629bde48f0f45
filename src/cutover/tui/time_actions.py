"""Time the operator acts on: accept the gap in the evidence that restarted the hold, raise
or clear a manual trigger, each with a note and journaled exactly as `cutover accept-gap`,
`cutover raise` and `cutover clear` do; a note dialog whose question no longer holds closes."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from cutover.record.events import Kind
from cutover.record.journal import iso_utc
from cutover.runbook.durations import humanize
from cutover.runbook.model import Trigger
from cutover.tui.screens.note import NoteScreen
from cutover.tui.time_text import at_text, gap_to_accept, span_text
from cutover.tui.widgets.runbook_pane import RunbookPane

WHAT_IT_MEANS = {
    "critical": "roll back now: it blocks advance, rings the bell and shows the banner",
    "high": "roll back by its deadline unless cleared with a note; it blocks advance",
    "medium": "extend monitoring: it holds the stage (the hold cannot complete) and blocks advance",
}


class TimeActionsMixin:
    """Mixed into CutoverApp; expects session, runbook, clock, cstate, hold, why_not, say."""

    # -- accepting a gap ----------------------------------------------------------------------

    def action_accept_gap(self) -> None:
        why = self.why_not("accept_gap")
        if why:
            self.say(f"accept-gap: {why}", "warning")
            return
        gap = gap_to_accept(self.hold)
        assert gap is not None
        stage = self.runbook.stage(self.cstate.stage_id)
        now = self.clock()
        start, end = gap
        about = ("gap", stage.id, self.cstate.visit)
        body = (
            f"The evidence of {stage.title} has a gap: {span_text(start, end, now)} "
            f"({humanize((end - start).total_seconds())}) with no evaluation of its gates, "
            "and it restarted the hold.\n"
            "Accepting it lets the hold count across it. Say why nobody watched and why "
            "that is fine: the note goes in the journal and is shown with the hold from "
            "now on."
        )

        def answered(note: str | None) -> None:
            if note is not None and ("gap", self.cstate.stage_id, self.cstate.visit) == about:
                self.run_worker(
                    partial(self._accept_gap, stage.id, start, end, note),
                    group="accept-gap",
                    exit_on_error=False,
                )

        self.push_screen(
            NoteScreen(
                "Accept a gap in the evidence",
                body,
                placeholder="why nobody watched, and why that is fine",
                enter="accepts the gap",
                about=about,
            ),
            answered,
        )

    async def _accept_gap(self, stage_id: str, start: datetime, end: datetime, note: str) -> None:
        try:
            event = self.session.journal.append(
                Kind.GAP_ACCEPTED,
                stage=stage_id,
                gap_start=iso_utc(start),
                gap_end=iso_utc(end),
                note=note,
            )
        except OSError as exc:
            self.say(f"accept-gap failed: the journal cannot be written: {exc}", "error")
            return
        self._own_seqs.add(event.seq)
        now = self.clock()
        self.say(
            f"✓ gap {span_text(start, end, now)} accepted by {event.actor} "
            f"(journal seq {event.seq})"
        )
        self.reload_state()

    # -- manual triggers ----------------------------------------------------------------------

    def manual_triggers(self) -> list[Trigger]:
        return [t for t in self.runbook.triggers if t.check is None]

    def action_trigger(self, trigger_id: str = "") -> None:
        """Raise the selected manual trigger with a note, or clear it when it is raised."""
        why = self.why_not("trigger")
        if why:
            self.say(f"raise / clear: {why}", "warning")
            return
        manual = self.manual_triggers()
        pane = self.main.query_one(RunbookPane)
        chosen = trigger_id or pane.selected_trigger()
        if not chosen and len(manual) == 1:
            chosen = manual[0].id
        if not chosen:
            pane.focus()
            self.call_after_refresh(pane.point_at_trigger, manual[0].id)
            self.say(
                "t raises or clears the selected manual trigger: the cursor is on them now; "
                "pick one and press t again",
                "warning",
            )
            return
        trigger = next(t for t in manual if t.id == chosen)
        up = self.cstate.raised.get(trigger.id)
        now = self.clock()
        name = trigger.title or trigger.id
        if up is None:
            title = f"Raise {trigger.id} ({trigger.severity})"
            body = (
                f"{name}\nA person has seen what no query sees. Raised, it acts like a fired "
                f"trigger: {WHAT_IT_MEANS[trigger.severity]}."
            )
            if trigger.respond_within_s:
                by = now + timedelta(seconds=trigger.respond_within_s)
                body += f"\nRaised now, the deadline is {at_text(by, now)}."
            placeholder, enter = "what was seen, and where", "raises it"
        else:
            title = f"Clear {trigger.id}"
            body = (
                f"{name}\nRaised by {up.actor} at {at_text(up.at, now)}: {up.note}\n"
                "Clearing says it is over; say why."
            )
            placeholder, enter = "why it is over", "clears it"
        raising = up is None

        def answered(note: str | None) -> None:
            if note is not None:
                self.run_worker(
                    partial(self._raise_or_clear, trigger, raising, note),
                    group="manual-trigger",
                    exit_on_error=False,
                )

        self.push_screen(
            NoteScreen(
                title,
                body,
                placeholder=placeholder,
                enter=enter,
                about=("raise" if raising else "clear", trigger.id),
                alarming=raising and trigger.severity == "critical",
            ),
            answered,
        )

    async def _raise_or_clear(self, trigger: Trigger, raising: bool, note: str) -> None:
        current, _ = self.session.state()
        up = current.raised.get(trigger.id)
        if raising and up is not None:
            self.say(f"{trigger.id} was raised meanwhile by {up.actor}: {up.note}", "warning")
            self.reload_state()
            return
        if not raising and up is None:
            self.say(f"{trigger.id} was cleared meanwhile; nothing to clear", "warning")
            self.reload_state()
            return
        try:
            if raising:
                event = self.session.journal.append(
                    Kind.TRIGGER_RAISED, trigger=trigger.id, severity=trigger.severity, note=note
                )
            else:
                event = self.session.journal.append(
                    Kind.TRIGGER_CLEARED, trigger=trigger.id, note=note
                )
        except OSError as exc:
            self.say(f"the journal cannot be written: {exc}", "error")
            return
        self._own_seqs.add(event.seq)
        if raising:
            deadline = ""
            if trigger.respond_within_s:
                by = event.ts + timedelta(seconds=trigger.respond_within_s)
                deadline = f"; roll back by {at_text(by, event.ts)} unless cleared with a note"
            self.say(
                f"‼ {trigger.id} RAISED ({trigger.severity}{deadline}) by {event.actor} "
                f"(journal seq {event.seq})",
                "warning",
            )
        else:
            self.say(f"✓ {trigger.id} cleared by {event.actor} (journal seq {event.seq})")
        self.reload_state()

    def follow_time_dialogs(self) -> None:
        """A note dialog whose question no longer holds closes (or refuses its answer)."""
        stage_visit = (self.cstate.stage_id, self.cstate.visit)
        for screen in list(self.screen_stack[1:]):
            if not isinstance(screen, NoteScreen) or screen.stale or not screen.about:
                continue
            why = ""
            what, *which = screen.about
            if what == "gap" and tuple(which) != stage_visit:
                why = "the stage changed: no gap was accepted"
            elif what == "raise" and which[0] in self.cstate.raised:
                why = f"{which[0]} was raised meanwhile by {self.cstate.raised[which[0]].actor}"
            elif what == "clear" and which[0] not in self.cstate.raised:
                why = f"{which[0]} was cleared meanwhile"
            if why:
                closed = screen.close_because(why)
                self.say(
                    f"{'dialog closed' if closed else 'the dialog no longer applies'}: {why}",
                    "warning",
                )
