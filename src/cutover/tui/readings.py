"""What the console reads: its queries' answers as they arrive (and the derived queries they
feed), the journal (another console or a shell may have written), the flag (read back on a
timer and after anyone's move), the stage's probes."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial

from cutover.judge.wanted import queries_for
from cutover.record.events import event_words
from cutover.record.state import MOVES
from cutover.sources import derived
from cutover.sources.probes import run_probe
from cutover.sources.results import Cause, QueryResult
from cutover.traffic import flags
from cutover.tui.keys import NOTEWORTHY
from cutover.tui.messages import DatabaseStatus, FlagRead, ProbeFinished, QueryFinished

# How long answers are gathered before the lines they change are redrawn together: well
# under the second a query refreshes in, and under what a person notices.
LIVE_EVERY_S = 0.2


class ReadingsMixin:
    """Query answers taken in; polls and workers for the journal, the flag and the probes,
    and what their answers change on screen. Mixed into CutoverApp."""

    _unreadable: str | None = None  # why the record cannot be read now, as last said

    def on_query_finished(self, message: QueryFinished) -> None:
        result = message.result
        self.results[result.query_id] = result
        # A derived query is computed from the answers in hand, as `check` and the watcher do.
        computed = derived.refresh(self.runbook.queries, self.results, result.query_id)
        fresh = self.fresh_from(result.query_id)
        for each in (result, *computed):
            if each is not result:
                fresh |= self.fresh_from(each.query_id)
            if self._laid_out():  # a fetch may finish while the console is closing
                assert self._parts is not None
                panel = self._parts.panels.get(each.query_id)
                if panel is not None:
                    panel.show_result(each)
        self.refresher.finished(result.query_id)
        self.recompute(fresh)  # judged (and recorded) at once
        self._show_live_soon()
        parts = self._parts
        first_screen_done = parts is not None and all(
            p.result is not None for p in parts.panels.values()
        )
        if self._rest_timer is not None and first_screen_done:
            self.call_after_refresh(self._mount_the_rest)

    def wants_fresh(self, query_id: str) -> bool:
        """Whether a query's refresh that came due is worth running now (tui/refresh): a
        gate of this stage, a live trigger, the rollback checklist or the header reads it
        (or a derived query they read does), or its panel (or a derived one reading it) is
        in view. Otherwise it waits until one of those holds (show_live asks every second):
        on a machine whose cores the database holds, rows nobody reads or sees cost the
        console's loop and the database alike."""
        parts = self._parts
        if parts is None:
            return True  # not laid out yet: everything counts as seen
        stage_id = self.cstate.stage_id
        always = self._read_always
        if always is None or always[0] != stage_id:
            read = set(queries_for(self.runbook, self.runbook.stage(stage_id), rollback=True))
            observed = self.runbook.flag.observed
            if observed is not None:
                read.update(derived.inputs(self.runbook.queries, [observed.query]))
            always = self._read_always = (stage_id, frozenset(read))
        if query_id in always[1]:
            return True
        for qid, panel in parts.panels.items():
            reads = qid == query_id or query_id in self.runbook.queries[qid].derived_from
            if reads and panel.in_view:
                return True
        # Not among the panels yet (they are mounted in turn): it is fetched, as before.
        return query_id not in parts.panels

    _read_always: tuple[str, frozenset[str]] | None = None

    def judged_results(self, now: datetime) -> dict[str, QueryResult]:
        """The answers the verdicts rest on. While the database is known to be down, every
        answer that came from it (and every derived one built on them) is judged as
        unreachable at once, not as fresh until its interval runs out: the header says DB ✗,
        so no gate on the same screen may still say ✓ PASS. The panels keep the last rows."""
        if self.refresher.db_up is not False:
            return self.results
        why = f"database unreachable: {self.refresher.db_detail}"
        queries = self.runbook.queries
        judged = dict(self.results)
        down = {qid for qid, query in queries.items() if query.kind == "sql"}
        grew = True
        while grew:  # a derived query is down when anything it reads is
            more = {
                qid
                for qid, query in queries.items()
                if query.kind == "derived" and down.intersection(query.derived_from)
            }
            grew = not more <= down
            down |= more
        for qid in down & judged.keys():
            judged[qid] = QueryResult(qid, ran_at=now, error=why, cause=Cause.UNREACHABLE)
        return judged

    def _show_live_soon(self) -> None:
        """Answers arrive in bursts (a refresh of every panel, a reconnect) and, with a dozen
        queries on their own clocks, spread over each second: the lines they change
        (verdicts, header, gates) are redrawn once for the answers of the next moment
        (LIVE_EVERY_S), not once per answer (measured: ~23 full redraws a second, most of
        the loop's time). The answer's own rows are on screen already; what it changes in
        the verdicts is judged (and recorded) at once."""
        if not self._live_pending and self._laid_out():
            self._live_pending = True
            self.set_timer(LIVE_EVERY_S, self._show_live_batched, name="live")

    def _show_live_batched(self) -> None:
        if self._live_pending:
            self.show_live()

    def record_unreadable(self, why: str | None) -> None:
        """The record cannot be read now (`why`: a store that refuses this console's role, a
        journal file that cannot be read), or can again (None). Said when it changes, not
        at every poll; what was read before stays on screen, and a rollback still goes
        ahead (it keeps its records locally)."""
        if why == self._unreadable:
            return
        if why is not None:
            self.say(f"cannot read the journal: {why}", "error")
        else:
            self.say("the journal can be read again: the record on screen is current")
        self._unreadable = why

    def poll_journal(self) -> None:
        """Another console or a headless command may have written: show it within a second.
        The whole state is asked for every poll (incremental: cheap when nothing is new), so
        a journal edited under the console breaks its chain on screen even when no new
        event arrived."""
        try:
            read = self.session.state()
            current, warnings = read
            self.record_unreadable(None)
            if (current.last_seq, current.chain, warnings) == (
                self.cstate.last_seq,
                self.cstate.chain,
                self.journal_warnings,
            ):
                return
            events = self.session.journal.tail_since(self.cstate.last_seq)
        except OSError as exc:
            self.record_unreadable(str(exc))
            return
        if current.chain is not None and current.chain != self.cstate.chain:
            self.say(f"the journal's chain is broken: {current.chain.message}", "error")
        mine = self.move_in_flight()
        for event in events:
            if event.seq in self._own_seqs or event.seq <= self._quiet_seq:
                continue
            if event.kind in NOTEWORTHY and not (mine and event.kind.startswith(mine)):
                what = event.get("step") or event.get("to_stage") or event.get("trigger") or ""
                note = f": {event.get('note')}" if event.get("note") else ""
                said = event_words(event.kind)
                self.say(f"journal: {event.actor} — {said} {what}".strip() + note)
        self.reload_state(read)
        if any(e.kind.partition(".")[0] in MOVES and not (mine and e.kind.startswith(mine))
               for e in events):  # fmt: skip
            # Someone moved traffic: what the flag reads is news too, and so are the new
            # stage's probes. Not our own move in flight: it reads the flag itself, and the
            # console reads it again when the move ends (on_action_finished).
            self.read_flag()
            self.run_probes()

    async def _open_flag(self) -> None:
        try:
            self.flag = await asyncio.to_thread(flags.session_flag, self.session)
        except flags.FlagError as exc:
            self.flag_error = str(exc)
            self.recompute()
            self.show_live()
            return
        await self._read_flag()

    def read_flag(self) -> None:
        if self.flag is None:
            return
        # Workers are given the function, never a coroutine: a read replaced before it
        # started then leaves nothing behind (a coroutine never awaited is a warning on
        # the operator's terminal that reads as a bug).
        self.run_worker(self._read_flag, group="flag", exclusive=True, exit_on_error=False)

    async def _read_flag(self) -> None:
        assert self.flag is not None
        try:
            state = await self.flag.read()
        except flags.FlagError as exc:
            self.post_message(FlagRead(None, str(exc)))
        else:
            self.post_message(FlagRead(state))

    def run_probes(self) -> None:
        stage = self.runbook.stage(self.cstate.stage_id)
        # Only probes that change nothing run on a timer: a POST probe (a test import) runs
        # when its step is signed.
        probes = self.runbook.probes
        for probe_id in {s.probe for s in stage.steps if s.probe and probes[s.probe].safe}:
            self.run_worker(
                partial(self._probe, probe_id),
                group=f"probe:{probe_id}",
                exclusive=True,
                exit_on_error=False,
            )
        if self.probe_poll_s:
            if self._probe_timer is not None:
                self._probe_timer.stop()
            self._probe_timer = self.set_timer(self.probe_poll_s, self.run_probes, name="probes")

    async def _probe(self, probe_id: str) -> None:
        probe = self.runbook.probes[probe_id]
        found = await run_probe(probe, environ=self.session.environ, clients=self.refresher.http)
        self.post_message(ProbeFinished(found))

    # -- their answers ----------------------------------------------------------------------

    def on_database_status(self, message: DatabaseStatus) -> None:
        if message.up:
            if self.refresher.came_up() and self.refresher.reconnect_attempt:
                self.say("database reconnected; refreshing every panel")
        elif self.refresher.went_down(message.detail):
            self.say(f"database down: {message.detail}; reconnecting with backoff", "warning")
        self.recompute()  # the verdicts change with the database, on the same screen
        self.show_live()

    def on_flag_read(self, message: FlagRead) -> None:
        self.flag_error = message.error
        if message.state is not None:
            self.flag_state = message.state
        self.recompute()
        self.show_live()
        # One poll chain only: a read asked for early (another console moved) replaces it.
        if self._flag_timer is not None:
            self._flag_timer.stop()
        self._flag_timer = self.set_timer(self.flag_poll_s, self.read_flag, name="flag")

    def on_probe_finished(self, message: ProbeFinished) -> None:
        self.probe_results[message.result.probe_id] = message.result
        self.show_state()
