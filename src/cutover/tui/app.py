"""The console: header, runbook pane, one panel per query, gates and keys. It asks the core
what is allowed (machine.decide) and shows why not; it never decides anything itself."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from cutover.judge.alarms import Alarm, alarming
from cutover.judge.check import CheckReport, queries_for
from cutover.judge.session import Session, query_args
from cutover.record.events import move_words
from cutover.runbook.durations import humanize
from cutover.sources.first_answers import FirstAnswers
from cutover.sources.observe import share_from
from cutover.sources.probes import ProbeResult
from cutover.traffic import flags, machine
from cutover.traffic.flags import FlagState
from cutover.tui import collector, hangup, mends, onscreen
from cutover.tui.commands import CutoverCommands
from cutover.tui.details import DetailsMixin
from cutover.tui.filtering import FilterMixin
from cutover.tui.first_screen import FirstScreenMixin
from cutover.tui.history import Folded, History
from cutover.tui.keys import KeysMixin
from cutover.tui.moving import MovesMixin
from cutover.tui.readings import ReadingsMixin
from cutover.tui.refresh import Refresher, Runner
from cutover.tui.screens.dialog import Dialog
from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.journal import JournalScreen
from cutover.tui.text import clean, observed_text, window_of
from cutover.tui.time_actions import TimeActionsMixin
from cutover.tui.time_text import gap_to_accept
from cutover.tui.timekeeping import TimeMixin
from cutover.tui.trends import TrendsMixin
from cutover.tui.triggers import TriggersMixin
from cutover.tui.widgets.header import (
    HeaderView,
    JournalBanner,
    StatusBar,
    StatusHeader,
    TriggerBanner,
    live_bottom,
    live_top,
)
from cutover.tui.widgets.query_panel import QueryPanel, columns_read
from cutover.tui.widgets.runbook_pane import RunbookPane


def _now() -> datetime:
    return datetime.now(UTC)


# The panels below the first screen are added once those on it have answered, or this late.
REST_AFTER_S = 2.0
# Once the rest have been drawn, the collector is told what lives as long as the console.
SETTLE_AFTER_S = 1.0
# A panel marks its fetch as running (⟳) once it has run this long.
SLOW_FETCH_S = 1.0


@dataclass(frozen=True)
class _MainParts:
    """The console's own screen, as laid out once by compose."""

    header: StatusHeader
    banner: TriggerBanner
    journal: JournalBanner
    bar: StatusBar
    pane: RunbookPane
    panels: dict[str, QueryPanel]


class CutoverApp(
    KeysMixin,
    MovesMixin,
    ReadingsMixin,
    TriggersMixin,
    TrendsMixin,
    TimeMixin,
    TimeActionsMixin,
    DetailsMixin,
    FilterMixin,
    FirstScreenMixin,
    App[None],
):
    CSS_PATH = "cutover.tcss"
    TITLE = "cutover"
    # The palette offers cutover's actions and jumps, not Textual's stock themes, screenshots
    # or "quit as soon as possible".
    COMMANDS: ClassVar[set] = {CutoverCommands}
    # The key bar shows what fits at 80 columns (^r a b s l ? q); `?` lists every key. Keys
    # by habit (k9s, lazygit, htop): j/k move, l is the log (the journal), F1 is help.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "rollback", "ROLLBACK", key_display="^r", priority=True),
        Binding("a", "advance", "advance"),
        Binding("b", "stepback", "back"),
        Binding("s", "signoff", "sign"),
        Binding("space", "pause", "pause", show=False),
        Binding("r", "refresh", "refresh", show=False),
        Binding("plus", "interval(1)", "slower", show=False),
        Binding("minus", "interval(-1)", "faster", show=False),
        Binding("z", "zoom", "zoom", show=False),
        Binding("e", "export", "export", show=False),
        Binding("t", "trigger", "raise/clear", show=False),
        Binding("g", "accept_gap", "accept gap", show=False),
        Binding("l", "journal", "journal"),
        Binding("slash", "filter", "filter", show=False),
        Binding("h", "history", "history", show=False),
        Binding("j", "move(1)", "down", show=False),
        Binding("k", "move(-1)", "up", show=False),
        Binding("question_mark", "help", "help"),
        Binding("f1", "help", "help", show=False),
        Binding("q", "quit", "quit"),
        # The README says Ctrl-C quits: it does, asking first while a move is in flight.
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        session: Session,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] = _now,
        runner_factory: Callable[[], Runner] | None = None,
        flag: flags.Flag | None = None,
        journal_poll_s: float = 1.0,
        flag_poll_s: float = 10.0,
        probe_poll_s: float | None = 60.0,
        first_answers: FirstAnswers | None = None,
    ) -> None:
        mends.mend()  # before the first frame: what it draws is freed without the collector
        super().__init__()
        self.session = session
        self.runbook = session.runbook
        self.readonly = readonly
        self.clock = clock
        self.journal_poll_s = journal_poll_s
        self.flag_poll_s = flag_poll_s
        self.probe_poll_s = probe_poll_s
        self.leaving_code: int | None = None  # set by SIGHUP/SIGTERM (see hang_up)
        self.flag: flags.Flag | None = flag
        self.flag_error: str | None = None
        self.flag_state: FlagState | None = None
        self._flag_timer: Timer | None = None
        self._probe_timer: Timer | None = None
        self._keys_shown: tuple | None = None
        self.refresher = Refresher(
            self,
            self.runbook.queries,
            runner_factory or session.runner,
            clock,
            session.environ,
            lambda query: query_args(query, self.cstate),
            self.wants_fresh,
        )
        self.refresher.first = first_answers  # asked before the screen was built
        self.cstate, self.journal_warnings = session.state()
        self.results: dict = {}
        self.as_judged: dict = {}  # the results as the last evaluation judged them
        self.report: CheckReport | None = None
        self.judged_at: datetime | None = None  # the clock of the evaluation on screen
        self.permissions: machine.Actions | None = None
        self.probe_results: dict[str, ProbeResult] = {}
        self.alarms: dict[str, Alarm] = {}  # what each trigger last said, latched when fired
        self._rung: set[str] = set()  # latched critical/high triggers the bell has rung for
        self.paused_at: datetime | None = None
        self.zoomed: QueryPanel | None = None
        self.past: History = History()
        self._history = Folded(self.runbook)
        self._parts: _MainParts | None = None
        self._live_pending = False
        self._rest_timer: Timer | None = None
        self._rest_started = False  # what the first screen does not show (_start_the_rest)
        self._settle_planned = False
        # Only a console in a terminal of its own tunes the collector (run_app): the process
        # is its own. A console embedded in another (a test's pilot) leaves it alone.
        self.settle_collector = False
        self._own_seqs: set[int] = set()
        self._quiet_seq = 0  # events up to here were this console's own move
        self.init_moves()
        self.init_time()

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield from live_top()
        with Horizontal(id="body"):
            yield RunbookPane(self.runbook)
            # Not a tab stop of its own: tab goes from the runbook to each panel's rows.
            with VerticalScroll(id="panels", can_focus=False):
                # The first paint shows only what fits on the screen: the panels below it
                # are added right after (on_mount), not laid out and drawn before it.
                for query in self._panels_first():
                    yield QueryPanel(query, columns_read(self.runbook, query.id))
        yield from live_bottom()

    def _show_the_rest(self, rest: list[QueryPanel]) -> None:
        if self.panels_filter:
            self.filter_panels(self.panels_filter, quiet=True)  # `/` set before they came
        for panel in rest:  # what their queries answered meanwhile
            result = self.results.get(panel.query_def.id)
            if result is not None:
                panel.show_result(result)
        self.show_live()
        self._settle_soon()

    def _settle_soon(self) -> None:
        """The whole screen is built: soon, the collector stops walking it (tui/collector)."""
        if self.settle_collector and not self._settle_planned:
            self._settle_planned = True
            self.set_timer(SETTLE_AFTER_S, self._settle, name="settle")

    def _settle(self) -> None:
        collector.resume()  # paused for the start (run_app), whatever comes next
        # Its full collection is the longest pause of the console's life (~0.1 s on a big
        # screen): not while a dialog is open or traffic is moving, where the next key is
        # the one that must not wait (a rollback's y); it waits for them to close.
        if len(self.screen_stack) > 1 or self.move_in_flight():
            self.set_timer(SETTLE_AFTER_S, self._settle, name="settle")
            return
        collector.settle()

    def on_load(self) -> None:
        self.run_worker(self.refresher.connect_early, group="connect", exit_on_error=False)

    def on_mount(self) -> None:
        # The console's own screen never changes its widgets: found once, not queried for on
        # every tick and every query that answers (the DOM queries were most of a tick).
        main = self.main
        self._parts = _MainParts(
            header=main.query_one(StatusHeader),
            banner=main.query_one(TriggerBanner),
            journal=main.query_one(JournalBanner),
            bar=main.query_one(StatusBar),
            pane=main.query_one(RunbookPane),
            panels={p.query_def.id: p for p in main.query(QueryPanel)},
        )
        self.past = self._history.update(self.session.journal.read().events)
        # A panel scrolled into view is brought up to date at once, not at the next tick.
        panels = main.query_one("#panels", VerticalScroll)
        self.watch(panels, "scroll_y", self._panels_scrolled, init=False)
        self.recompute()
        self.show_state()
        for query_id in self._first_fetches():
            self.refresher.fetch(query_id)
        self.refresher.first_fetches_started()
        self.call_after_refresh(self.refresher.first_frame.set)
        if self.runbook.flag.kind != "vercel":
            self._read_the_flag()  # no HTTP to wait for
        self.set_interval(1.0, self.tick, name="tick")
        self.set_interval(self.journal_poll_s, self.poll_journal, name="journal")
        self.follow_store()
        # The rest of the panels, a flag on Vercel and the probes once the first screen's panels
        # have answered (or after a while, a slow query holding none of them back): their
        # layout is not in the first paint, nor their imports in its answers' way.
        self._rest_timer = self.set_timer(REST_AFTER_S, self._mount_the_rest, name="rest")
        if self.settle_collector:  # paused for the start (run_app): never for longer than this
            self.set_timer(collector.PAUSED_AT_MOST_S, collector.resume, name="collector")
        pane = self.main.query_one(RunbookPane)
        pane.focus()
        # Placed now, not after the first refresh: a key pressed as soon as the console is
        # drawn (before its after-refresh callbacks run) must find the cursor on the step.
        pane.point_at_next_step(self.cstate)
        self.call_after_refresh(pane.scroll_to_cursor)  # once the pane has its size
        self.show_digest()

    def _panels_scrolled(self) -> None:
        self.call_after_refresh(self.show_live)  # once the scroll has placed them

    def hang_up(self, code: int = 129, *, force: bool = False) -> None:
        """SIGHUP (the SSH link dropped) or SIGTERM, scheduled by tui.hangup: leave cleanly.
        An emergency rollback in flight finishes first and journals how it ended; the
        console exits when its worker does (on_worker_state_changed). Only `force` (a
        second SIGTERM) stops it. An advance or step back is simply interrupted."""
        if self.leaving_code is None:
            self.leaving_code = code
        if self.move_in_flight() == "rollback" and not force:
            self.say(
                "signal received: the emergency rollback in flight finishes first, then the "
                "console exits (a second SIGTERM stops it)",
                "warning",
            )
            return
        self.exit(return_code=self.leaving_code)

    async def on_unmount(self) -> None:
        self.close_time()
        with contextlib.suppress(Exception):
            await self.refresher.aclose()
        if self.flag is not None:
            with contextlib.suppress(Exception):
                await self.flag.aclose()

    # -- what the core says --------------------------------------------------------------

    def reload_state(self, read: tuple | None = None) -> None:
        """Show the journal's state (`read`: what session.state() just returned)."""
        before = (self.cstate.stage_id, self.cstate.visit)
        try:
            read = read or self.session.state()
            events = self.session.journal.read().events
        except OSError as exc:  # what was read before stays on screen
            self.record_unreadable(str(exc))
            return
        self.cstate, self.journal_warnings = read
        if (self.cstate.stage_id, self.cstate.visit) != before:
            self.evidence.forget_said()  # the new stage's verdicts are recorded afresh
        self.past = self._history.update(events)
        for screen in self.screen_stack:
            if isinstance(screen, JournalScreen):
                screen.follow(events)  # a rollback started from inside it shows up at once
        self.recompute()
        self.show_state()
        moved = (self.cstate.stage_id, self.cstate.visit) != before
        if moved and self._laid_out():
            # The cursor follows the cutover to the new stage's next step (once the tree has
            # laid out the stage it just expanded), so `s` signs what it shows.
            pane = self.main.query_one(RunbookPane)
            self.call_after_refresh(pane.point_at_next_step, self.cstate)
        self.follow_dialogs(moved=moved)
        self.follow_time_dialogs()

    def recompute(self, fresh: set[tuple[str, str]] | None = None) -> None:
        """Judge again: on every tick (staleness, the hold and `for` move with the clock),
        and when a query answered (`fresh`: the gates and triggers it feeds, recorded as
        evidence)."""
        now = self.clock()
        self.judged_at = now  # what show_live draws from: one evaluation, one clock
        self.judge_now(now, fresh or set())
        # A flag that cannot be read now is unknown, whatever it read before.
        read = None if self.flag_error else self.flag_state
        self.permissions = machine.decide(
            self.runbook, self.cstate, now, self.report, read, self.hold
        )
        self.alarms = self._remember(self.report, now)
        live = self.traffic_live()
        rung = {a.trigger_id for a in alarming(self.alarms.values(), ("critical", "high"))}
        rung = rung if live else set()
        if rung - self._rung:
            self.bell()  # a new fire (or a raise); one that stays latched rings once
        self._rung = rung

    @property
    def main(self):
        """The console's own screen, under whatever dialog is open."""
        return self.screen_stack[0]

    def _laid_out(self) -> bool:
        """False while the console is closing: a late message must not touch gone widgets."""
        parts = self._parts
        return bool(self.screen_stack) and parts is not None and parts.header.is_attached

    def show_state(self) -> None:
        """Everything that changes with the journal: the tree plus what tick() shows."""
        if not self._laid_out():
            return
        assert self._parts is not None
        self._parts.pane.show(self.cstate, self.probe_results, self.past)
        self.show_live()

    def show_live(self) -> None:
        """The lines that must always be current, on every screen in the stack (a dialog
        carries its own copies: the console behind it is not redrawn while it is open)."""
        if not self._laid_out():
            return
        self._live_pending = False  # this draw covers a batched one still to come
        # The header, the gates and advance lines, the hold's restart line and the panels all
        # say what the last evaluation found, at its time: never two clocks on one screen.
        now = self.judged_at or self.clock()
        header = self.header_view(now)
        banner = self.banner_alarms()
        notices = self.trigger_notices(now)
        chain = self.cstate.chain.message if self.cstate.chain is not None else None
        stage = self.runbook.stage(self.cstate.stage_id)
        advance = self.permissions.advance if self.permissions else None
        done = self.completed_words(now)
        parts = self._parts
        assert parts is not None
        # The console's own lines, then each dialog's copies (a dialog is a small tree).
        layers = [((parts.header,), (parts.banner,), (parts.journal,), (parts.bar,))]
        for screen in self.screen_stack[1:]:
            layers.append(
                (
                    screen.query(StatusHeader),
                    screen.query(TriggerBanner),
                    screen.query(JournalBanner),
                    screen.query(StatusBar),
                )
            )
        for headers, banners, journals, bars in layers:
            for widget in headers:
                widget.show(header)
            for widget in banners:
                widget.show(banner, notices)
            for widget in journals:
                widget.show(chain)
            for widget in bars:
                widget.show(self.report, bool(stage.gates), advance, self.readonly, done)
        for screen in self.screen_stack[1:]:
            if isinstance(screen, HelpScreen):
                screen.show_rows(self.help_rows())
                screen.show_now(self.time_lines(now))
        pane = parts.pane
        held_back = self.hold is not None and bool(self.hold.held_by)
        pane_hold = header.hold if stage.hold_s > 0 or held_back else ""
        pane.show_live(stage.id, pane_hold, done or None)
        pane.show_triggers(self.manual_lines(now))
        judged = set(queries_for(self.runbook, stage))
        paused_for = self.paused_for(now)
        seen = onscreen.visible(self.main)
        for panel in parts.panels.values():
            panel.see(seen is None or panel in seen)
            if not panel.in_view:
                continue  # out of sight costs nothing; drawn when scrolled into view
            qid = panel.query_def.id
            panel.show_meta(
                now,
                self.refresher.intervals[qid],
                # A fetch shows ⟳ once it takes a while: one that answers within a second
                # would only make every panel's frame blink (and be redrawn) twice a refresh.
                running=self.refresher.running_for(qid) >= SLOW_FETCH_S,
                paused=self.refresher.paused,
                # A gate's or trigger's data is stale by the runbook's interval, whatever
                # `+` did: the STALE mark agrees with the verdict.
                stale_after_s=panel.query_def.refresh_s if qid in judged else None,
                paused_for=humanize(paused_for) if paused_for is not None else "",
            )
            panel.show_verdicts(self.verdict_lines(qid))
        self.refresher.unpark_wanted()  # what came into view, or what the stage now reads
        # Textual asks every binding of every screen again on each refresh_bindings (the keys
        # line then rebuilds only if what it shows changed, widgets/keybar): only when a
        # key's state can have changed.
        keys = (
            self.permissions,
            self.readonly,
            self.move_in_flight(),
            self.refresher.paused,
            gap_to_accept(self.hold),
            self.cstate.chain,
            self.cstate.completed,
        )
        if keys != self._keys_shown:
            self._keys_shown = keys
            self.refresh_bindings()

    def on_dialog_opened(self, message: Dialog.Opened) -> None:
        self.show_live()

    def paused_for(self, now: datetime) -> float | None:
        if not self.refresher.paused or self.paused_at is None:
            return None
        return max(0.0, (now - self.paused_at).total_seconds())

    def header_view(self, now: datetime) -> HeaderView:
        stage = self.runbook.stage(self.cstate.stage_id)
        flag_state = self.flag_state
        note = ""
        if self.flag_error:
            note = "flag unreadable"
        elif flag_state is not None and flag_state.percent is not None and not flag_state.in_effect:
            note = "not live: needs redeploy" if flag_state.needs_redeploy else "not live"
        observed = self.observed_words()
        hold, notes = self.hold_words(now)
        return HeaderView(
            title=self.runbook.title,
            stage_title=stage.title,
            stage_number=self.runbook.stage_index(stage.id) + 1,
            stage_count=len(self.runbook.stages),
            percent_set=self.cstate.percent,
            percent_read=flag_state.percent if flag_state else None,
            read_note=note,
            pinned=flag_state.pinned if flag_state else None,
            observed=observed,
            hold=hold,
            db_up=self.refresher.db_up,
            db_detail=self.refresher.db_detail,
            db_retry_in=self._retry_in(now),
            flag_ok=None
            if self.flag_state is None and not self.flag_error
            else not self.flag_error,
            flag_detail=self.flag_error or (flag_state.detail if flag_state else ""),
            paused_for_s=self.paused_for(now),
            readonly=self.readonly,
            in_flight=self.move_in_flight() or self.teammate_move(),
            note=self.session.environ.get("CUTOVER_DEMO_NOTE", ""),
            # A move in flight, this console's or one journaled by any other process (a
            # teammate's rollback from a shell), changes the flag on purpose: not drift.
            drift=None
            if self.move_in_flight() or self.cstate.pending is not None
            else machine.drift(flag_state, stage, record_read=not self.session.record_unread()),
            times_in_stage=self.past.times_in(stage.id),
            hold_notes=tuple(notes),
            completed=self.completed_words(now) or None,
        )

    def teammate_move(self) -> str | None:
        """A move another process journaled and has not finished: "rollback by ana (…)"."""
        pending = self.cstate.pending
        if pending is None:
            return None
        return f"{move_words(pending.move)} by {clean(pending.actor)} since {pending.at:%H:%M:%S}Z"

    def action_move(self, step: int) -> None:
        """j / k: down / up in whatever is focused (the runbook tree, a panel's rows)."""
        focused = self.focused
        action = "action_cursor_down" if step > 0 else "action_cursor_up"
        if focused is not None and hasattr(focused, action):
            getattr(focused, action)()

    def observed_words(self) -> str | None:
        """The observed share with its count and window, or None when the runbook has none."""
        spec = self.runbook.flag.observed
        if spec is None:
            return None
        query = self.runbook.queries[spec.query]
        # as judged: with the database known down, the share is unknown too, not the last
        result = self.as_judged.get(spec.query)
        if result is None:
            return observed_text(None, None, "", "", "not run yet")
        seen = share_from(result, spec.column)
        why = seen.detail.removeprefix(f"{spec.query}: ") if seen.percent is None else ""
        return observed_text(seen.percent, seen.count, seen.counted, window_of(query.title), why)

    def _retry_in(self, now: datetime) -> float | None:
        at = self.refresher.next_reconnect_at
        if self.refresher.db_up is not False or at is None:
            return None
        return max(0.0, (at - now).total_seconds())

    # -- clocks ---------------------------------------------------------------------------

    def tick(self) -> None:
        self.recompute()  # staleness and hold both move with the clock
        self.show_live()

    # -- messages from workers ------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (
            self.leaving_code is not None
            and event.worker is self.move_worker
            and event.worker.is_finished
        ):
            self.exit(return_code=self.leaving_code)  # the rollback we waited for is over
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.say(
                f"{event.worker.name or 'background work'} failed: {type(error).__name__}: {error}",
                "error",
            )

    def say(self, message: str, severity: str = "information") -> None:
        """A notification with the text exactly as given: never markup, never a control."""
        self.notify(clean(message, max_len=500), severity=severity, markup=False)  # type: ignore[arg-type]


def run_console(
    session: Session,
    readonly: bool = False,
    mouse: bool = True,
    first_answers: FirstAnswers | None = None,
) -> int:
    """`cutover tui` and `cutover demo` open the console here; returns the exit code."""
    app = CutoverApp(session, readonly=readonly, first_answers=first_answers)
    return run_app(app, mouse=mouse)


def run_app(app: CutoverApp, mouse: bool = True) -> int:
    """Run the console with SIGHUP and SIGTERM handled (tui.hangup); the exit code."""
    app.settle_collector = True
    collector.pause_for_start()  # until the screen is built (_settle) or a few seconds
    with hangup.handlers(app):
        app.run(mouse=mouse)
    return int(app.return_code or 0)
