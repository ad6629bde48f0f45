"""The console's keys: what each does, whether it is available now and why not (for the
footer, the help and the palette), and the small actions that need no dialog of their own."""

from __future__ import annotations

from functools import partial

from textual.widgets import DataTable

from cutover.record.events import MOVE_WORDS, Kind
from cutover.runbook.durations import humanize
from cutover.traffic.signoff import contradicted
from cutover.tui.screens.confirm import ConfirmScreen
from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.journal import JournalScreen
from cutover.tui.screens.moves import AdvanceScreen
from cutover.tui.screens.signoff import SignOffAnswer, SignOffScreen
from cutover.tui.time_text import gap_to_accept
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import CHECKLIST, RunbookPane

HELP_SCREEN = "help"  # the installed help screen's name

CHANGING = {"advance", "stepback", "rollback", "signoff", "trigger", "accept_gap"}
# Keys shown dimmed (with the reason) while refused, instead of doing nothing.
DIMMABLE = {"advance", "stepback", "rollback", "signoff", "trigger", "accept_gap"}
# What a key does while a dialog is open: the dialog's own keys, plus these.
UNDER_DIALOGS = {"rollback", "quit", "command_palette"}
# Keys that answer even when their action is unavailable, saying why.
EXPLAINED = {
    "a": "advance",
    "b": "stepback",
    "s": "signoff",
    "ctrl+r": "rollback",
    "t": "trigger",
    "g": "accept_gap",
}
# A refused key says what it is in words, not the action's id.
ACTION_WORDS = {
    **MOVE_WORDS,
    "signoff": "sign-off",
    "trigger": "raise / clear",
    "accept_gap": "accept gap",
}
# Journal events written elsewhere that this console announces when it sees them.
NOTEWORTHY = (
    {"signoff"}
    | {
        f"{move}.{phase}"
        for move in ("advance", "rollback", "stepback")
        for phase in ("intent", "done")
    }
    | {Kind.TRIGGER_RAISED, Kind.TRIGGER_CLEARED, Kind.GAP_ACCEPTED, Kind.COMPLETE}
)

# key, action, what it does: the help screen and the palette read this one table.
KEYS: tuple[tuple[str, str, str], ...] = (
    ("ctrl+r", "rollback", "EMERGENCY ROLLBACK to 0 %, confirmed with y (from any screen)"),
    ("a", "advance", "advance to the next stage: type its percent to confirm"),
    ("b", "stepback", "step back to the previous stage's percent, with a reason"),
    ("s", "signoff", "sign off the selected step of the current stage"),
    ("t", "trigger", "raise (or clear) the selected manual trigger, with a note"),
    ("g", "accept_gap", "accept the gap in the evidence that restarted the hold (a note)"),
    ("space", "pause", "pause / resume every refresh"),
    ("r", "refresh", "refresh every query now"),
    ("+ / -", "interval", "slower / faster refresh of the focused panel (all when none)"),
    ("z", "zoom", "zoom the focused panel to full screen, again to restore"),
    ("e", "export", "export the focused panel's rows to CSV"),
    ("l", "journal", "the journal (audit trail, the log), filterable"),
    ("/", "filter", "filter the focused panel's rows, or the panels from elsewhere"),
    ("h", "history", "the focused panel's gates and triggers over this stage and the one before"),
    ("j / k", "", "down / up in the runbook tree or a panel's rows"),
    ("tab", "", "move between the runbook pane and the panels"),
    ("ctrl+p", "", "command palette: actions, jump to a query or a stage"),
    ("?", "help", "this help (F1 too)"),
    ("q", "quit", "quit (asks first while a move is in flight)"),
)


class KeysMixin:
    """Mixed into CutoverApp."""

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CHANGING and self.readonly:
            return False  # read-only: gone from the footer, the help and the palette
        if len(self.screen_stack) > 1 and action not in UNDER_DIALOGS:
            return False  # under a dialog only its keys, rollback and quit answer
        if action in DIMMABLE:
            return True if not self.why_not(action) else None
        return True

    def why_not(self, action: str) -> str:
        """Why an action is unavailable right now ('' when it is available)."""
        if action in CHANGING and self.readonly:
            return "read-only console (--readonly)"
        if action == "rollback" and self.move_running("rollback"):
            return ""
        running = self.move_in_flight()
        if action in ("advance", "stepback") and running:
            return f"a {running} is in flight"
        if action == "signoff":
            if self.cstate.chain is not None:
                return self.cstate.chain.message
            if self.cstate.completed is not None:
                return "the cutover is complete: nothing is left to sign"
            return ""
        if action == "trigger":
            if not self.manual_triggers():
                return 'the runbook has no manual triggers (kind = "manual")'
            return ""
        if action == "accept_gap":
            if self.cstate.completed is not None:
                return "the cutover is complete"
            if gap_to_accept(self.hold) is None:
                return "no gap in the evidence restarted the hold"
            return ""
        if self.permissions is None:
            return ""
        permission = {
            "advance": self.permissions.advance,
            "stepback": self.permissions.stepback,
            "rollback": self.permissions.rollback,
        }.get(action)
        if permission is None or permission.allowed:
            return ""
        return permission.reason

    def palette_actions(self) -> list[tuple[str, str, str]]:
        entries = []
        for key, action, what in KEYS:
            if not action or (self.readonly and action in CHANGING):
                continue
            if action == "interval":
                continue
            entries.append((f"{what[0].upper()}{what[1:]} ({key})", action, self.why_not(action)))
        if not self.readonly:
            for trigger in self.manual_triggers():
                verb = "Clear" if trigger.id in self.cstate.raised else "Raise"
                entries.append(
                    (
                        f"{verb} trigger: {trigger.title or trigger.id} ({trigger.severity})",
                        f"trigger({trigger.id!r})",
                        self.why_not("trigger"),
                    )
                )
        return entries

    def on_key(self, event) -> None:
        # A dimmed or hidden key still answers: pressing `a` or ctrl+r when refused says
        # why, instead of doing nothing in silence.
        action = EXPLAINED.get(event.key)
        if action is None or (event.key != "ctrl+r" and len(self.screen_stack) > 1):
            return
        reason = self.why_not(action)
        if reason:
            self.say(f"{ACTION_WORDS.get(action, action)} refused: {reason}", "warning")

    def help_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for key, action, what in KEYS:
            if self.readonly and action in CHANGING:
                continue
            rows.append((key, what, self.why_not(action) if action else ""))
        return rows

    def action_help(self) -> None:
        """The help is built once and kept (installed): composing it and its key bar again
        on every `?` was most of what opening it cost. It shows what is true now."""
        rows, now_lines = self.help_rows(), self.time_lines(self.clock())
        if not self.is_screen_installed(HELP_SCREEN):
            self.install_screen(HelpScreen(rows, now_lines), HELP_SCREEN)
        else:
            help_screen = self.get_screen(HELP_SCREEN)
            assert isinstance(help_screen, HelpScreen)
            if help_screen in self.screen_stack:
                return
            help_screen.show_rows(rows)
            help_screen.show_now(now_lines)
        self.push_screen(HELP_SCREEN)

    def action_journal(self) -> None:
        read = self.session.journal.read()
        self.push_screen(JournalScreen(read.events, read.warnings))

    def action_pause(self) -> None:
        self.refresher.pause(not self.refresher.paused)
        self.paused_at = self.clock() if self.refresher.paused else None
        self.say("refresh paused: space resumes" if self.refresher.paused else "refresh resumed")
        self.show_live()

    def action_refresh(self) -> None:
        self.refresher.refresh_now()
        self.show_live()

    def focused_panel(self) -> QueryPanel | None:
        node = self.screen.focused
        while node is not None:
            if isinstance(node, QueryPanel):
                return node
            node = node.parent  # type: ignore[assignment]
        return None

    def action_interval(self, direction: int) -> None:
        panel = self.focused_panel()
        ids = [panel.query_def.id] if panel else list(self.runbook.queries)
        seconds = self.refresher.change_interval(ids, direction)
        which = ids[0] if panel else "every query"
        self.say(f"{which} refreshes every {humanize(seconds)}")
        self.show_live()

    def action_zoom(self) -> None:
        """One panel fills the body; the header, banner and gates/action line stay (so
        zoom hides the other panels and the runbook, never the screen's live lines)."""
        pane = self.main.query_one(RunbookPane)
        panels = list(self.main.query(QueryPanel))
        if self.zoomed is not None:
            self.zoomed.remove_class("-zoomed")
            self.zoomed = None
            pane.display = True
            for panel in panels:
                panel.display = True
            return
        zoomed = self.focused_panel()
        if zoomed is None:
            self.say("focus a panel first (tab), then z zooms it", "warning")
            return
        self.zoomed = zoomed
        pane.display = False
        for panel in panels:
            panel.display = panel is zoomed
        zoomed.add_class("-zoomed")

    def action_export(self) -> None:
        panel = self.focused_panel()
        if panel is None:
            self.say("focus a panel first (tab), then e exports its rows", "warning")
            return
        from cutover.tui.export import export_csv

        try:
            path = export_csv(self.runbook.folder, panel, self.clock())
        except OSError as exc:
            self.say(f"export failed: {exc}", "error")
            return
        self.say(f"exported {panel.query_def.id} to {path}")

    def jump_to_query(self, query_id: str) -> None:
        panel = self._parts.panels.get(query_id) if self._parts is not None else None
        if panel is None or not panel.is_attached:
            # Below the first screen, not added yet: add the rest now, then go there.
            self._mount_the_rest()
            self.call_after_refresh(self._jump_when_mounted, query_id)
            return
        panel.query_one(DataTable).focus()
        panel.scroll_visible()

    def _jump_when_mounted(self, query_id: str) -> None:
        panel = self._parts.panels.get(query_id) if self._parts is not None else None
        if panel is not None and panel.is_attached:
            panel.query_one(DataTable).focus()
            panel.scroll_visible()

    def jump_to_stage(self, stage_id: str) -> None:
        self.main.query_one(RunbookPane).select_stage(stage_id)

    # -- sign-off ----------------------------------------------------------------------------

    def action_signoff(self) -> None:
        pane = self.main.query_one(RunbookPane)
        ref = pane.selected_step()
        stage = self.runbook.stage(self.cstate.stage_id)
        cursor = pane.cursor_node
        if ref is None and (cursor is None or (cursor.data and cursor.data.stage == stage.id)):
            # On the current stage's own row, or with no cursor placed yet, `s` means the
            # current stage's next unsigned step.
            pane.point_at_next_step(self.cstate)
            ref = pane.selected_step()
        if ref is not None and ref.stage == CHECKLIST:
            self._sign_checklist_step(ref.step or "")
            return
        if ref is None or ref.stage != stage.id:
            # The highlighted row is another stage's (often the one just left): show the
            # current stage's next step rather than leave the operator guessing.
            self.call_after_refresh(pane.point_at_next_step, self.cstate)
            self.say(
                f"s signs a step of the current stage ({stage.title}): the cursor is on its "
                "next step now, press s again to sign it",
                "warning",
            )
            return
        step = next(s for s in stage.steps if s.id == ref.step)
        self._ask_signoff(step, stage.title, stage.gates, self.cstate.signoffs)

    def _sign_checklist_step(self, step_id: str) -> None:
        """A step of the rollback checklist: signed like a stage's (the journal marks it as
        the checklist's), its gates judged with the stage's while the checklist is open."""
        checklist = self.runbook.rollback
        after = self.cstate.after_rollback
        if checklist is None or after is None:
            return
        step = next(s for s in checklist.steps if s.id == step_id)
        title = checklist.title or "After the rollback"
        self._ask_signoff(step, title, checklist.gates, after.signoffs)

    def _ask_signoff(self, step, title: str, gates, signoffs) -> None:
        """The sign-off dialog for a step of the current stage or of the rollback checklist;
        what it answers is signed only if the cutover is still where it was asked."""
        if step.id in signoffs:
            self.say(f"{step.id} is already signed by {signoffs[step.id].actor}", "warning")
            return
        stage_id, visit = self.cstate.stage_id, self.cstate.visit

        def signed(answer: SignOffAnswer | None) -> None:
            if answer is not None and (self.cstate.stage_id, self.cstate.visit) == (
                stage_id,
                visit,
            ):
                self.run_worker(
                    partial(self._sign, step.id, answer), group="signoff", exit_on_error=False
                )

        self.push_screen(
            SignOffScreen(
                step,
                stage_id,
                visit,
                title,
                self.session.journal.actor,
                self.runbook.probes.get(step.probe) if step.probe else None,
                self.session.environ,
                contradicted(step, gates, self.report),
            ),
            signed,
        )

    def follow_dialogs(self, *, moved: bool) -> None:
        """A dialog about the stage closes when the stage changes under it (another console
        advanced or rolled back) or its step got signed elsewhere, and says so."""
        stage = self.runbook.stage(self.cstate.stage_id)
        done = self.cstate.completed
        for screen in list(self.screen_stack[1:]):
            why = ""
            if isinstance(screen, SignOffScreen):
                if (screen.stage_id, screen.visit) != (stage.id, self.cstate.visit):
                    why = f"the cutover is now at {stage.title}: nothing was signed"
                elif screen.step.id in self.cstate.signoffs:
                    signed = self.cstate.signoffs[screen.step.id]
                    why = f"{screen.step.id} was signed meanwhile by {signed.actor}"
            elif isinstance(screen, AdvanceScreen) and not screen.started and moved:
                why = f"the cutover is now at {stage.title}: nothing was moved; look again"
            elif isinstance(screen, AdvanceScreen) and not screen.started and done:
                why = f"the cutover was completed meanwhile by {done.actor}"
            if why and not screen.stale:
                closed = screen.close_because(why)
                self.say(
                    f"{'dialog closed' if closed else 'the dialog no longer applies'}: {why}",
                    "warning",
                )

    async def _sign(self, step_id: str, answer: SignOffAnswer) -> None:
        from cutover.traffic.signoff import SignOffRefused, sign_off

        if answer.probe is not None:  # what the dialog's run said is the tree's latest word
            self.probe_results[answer.probe.probe_id] = answer.probe
            self.show_state()

        try:
            done = await sign_off(
                self.session,
                step_id,
                note=answer.note,
                override=answer.override,
                probe_result=answer.probe,
                report=self.report,
            )
        except SignOffRefused as exc:
            self.say(str(exc), "error")
            return
        self._own_seqs.add(done.event.seq)
        self.say(f"✓ {step_id} signed by {done.event.actor} (journal seq {done.event.seq})")
        self.reload_state()
        self.main.query_one(RunbookPane).point_at_next_step(self.cstate)

    # -- quitting ---------------------------------------------------------------------------

    async def action_quit(self) -> None:
        running = self.move_in_flight()
        if not running:
            self.exit(return_code=0)
            return
        if any(isinstance(screen, ConfirmScreen) for screen in self.screen_stack):
            return  # already asking: a second q or ctrl+c is not an answer

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit(return_code=0)

        self.push_screen(
            ConfirmScreen(
                f"A {running} is in flight. Quitting stops it (the journal records "
                "it as interrupted). Quit anyway?"
            ),
            answered,
        )
