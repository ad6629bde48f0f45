"""The console's side of time: it records what it evaluates as evidence and reads everyone's
back (tui.evidence_feed), judges the hold and `for` from it, says where they stand in words
(tui.time_text), and at start shows what changed while this operator was away (`cutover
digest`). What the operator does about time is in tui.time_actions."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from cutover.judge.check import CheckReport
from cutover.judge.digest import digest, person
from cutover.judge.hold import Hold
from cutover.record.evidence import GATE, TRIGGER, Run
from cutover.runbook.durations import humanize
from cutover.tui.evidence_feed import EvidenceFeed, EvidenceFollower
from cutover.tui.mover_line import MoverWatch
from cutover.tui.screens.digest import DigestScreen
from cutover.tui.time_text import (
    at_text,
    completed_text,
    deadline_text,
    gap_to_accept,
    hold_line,
    hold_notes,
    manual_line,
    trigger_notices,
)


class TimeMixin:
    """Mixed into CutoverApp; expects session, runbook, clock, cstate, report, results."""

    def init_time(self) -> None:
        session = self.session
        self.evidence = EvidenceFeed(
            session.evidence_store("console", clock=lambda: self.clock()),
            EvidenceFollower(session.store.evidence_feed(), session.journal.key),
            session.sql_digests(),
        )
        self.hold: Hold | None = None
        self._evidence_said: set[str] = set()  # each trouble with the evidence, said once
        # While you were away: since when, and the evidence from a day before it (read
        # whole once, here, before the follower forgets what the hold no longer needs).
        me = person(session.journal.actor)
        self._away_since = session.store.last_seen(me)
        self._away_runs: list[Run] = []
        if self._away_since is not None:
            with contextlib.suppress(OSError):  # said by the first tick, if it lasts
                self.evidence.follower.poll()
            horizon = self._away_since - timedelta(days=1)
            self._away_runs = sorted(
                (r for r in self.evidence.follower.runs.values() if r.last >= horizon),
                key=lambda r: (r.first, r.run),
            )

    def follow_store(self) -> None:
        """Team mode: another host's append (a sign-off, a move) wakes the journal poll at
        once, not at its next second. The store calls from its own thread, so this only
        schedules; the files store never calls (the poll alone reads the file)."""
        loop = asyncio.get_running_loop()
        self._store_stale: str | None = None
        self._store_mover: str | None = None
        self._lock_heard: int | None = None  # the store's count of lock notifications seen

        def woken() -> None:
            with contextlib.suppress(RuntimeError):  # the console is closing
                loop.call_soon_threadsafe(self._store_news)

        self.session.store.on_change(woken)
        if self.session.store.kind != "files":
            loop.call_soon(self._store_news)  # a store already lost at opening is said too
        # Another process's move in flight, named on a line of its own while it lasts.
        self.mover_watch = MoverWatch(self).start()

    def _store_news(self) -> None:
        """What another host wrote, read now; and the store lost or back, said once each
        (the journal's warnings then carry the stale mark until it is back)."""
        self.poll_journal()
        stale = self.session.store.stale
        if stale is not None and self._store_stale is None:
            self.say(stale, "error")
        elif stale is None and self._store_stale is not None:
            self.say("the state store is back: the record on screen is current again")
        self._store_stale = stale
        # Someone on another host taking the move lock is said by name, as it happens: asked
        # only when a lock was taken or freed (or the store came back), not on every other
        # console's evidence, which notifies every few seconds; this runs on the UI thread.
        generation = getattr(self.session.store, "generation", None)
        heard = generation("lock") if generation is not None else None
        if heard is not None and heard == self._lock_heard:
            return
        self._lock_heard = heard
        try:
            holder = self.session.store.move_holder()
        except OSError:
            return
        if holder != self._store_mover:
            self._store_mover = holder
            if holder is not None and not self.move_in_flight():
                self.say(f"moving now: {holder}", "warning")

    # -- evidence -----------------------------------------------------------------------------

    def fresh_from(self, query_id: str) -> set[tuple[str, str]]:
        """The gates of the current stage and the triggers that read `query_id`."""
        stage = self.runbook.stage(self.cstate.stage_id)
        fresh = {(GATE, g.id) for g in stage.gates if g.check.query == query_id}
        fresh |= {
            (TRIGGER, t.id)
            for t in self.runbook.triggers
            if t.check is not None and t.check.query == query_id
        }
        return fresh

    def evidence_runs(self) -> tuple[Run, ...]:
        """Everyone's evidence that can still matter. A file that cannot be read is said
        once; the verdicts then rest on what was read before and what this console records."""
        try:
            self.evidence.poll(self.cstate.entered_at)
        except OSError as exc:
            self._evidence_problem(
                f"cannot read the evidence in {self.session.store.evidence_where}: {exc}"
            )
        return self.evidence.runs()

    def _evidence_problem(self, trouble: str) -> None:
        if trouble not in self._evidence_said:
            self._evidence_said.add(trouble)
            self.say(trouble + "; the hold counts only what could be read", "error")

    def record(self, report: CheckReport, fresh: set[tuple[str, str]]) -> bool:
        """Record what was just evaluated; True when anything was. While paused the console
        evaluates nothing new, so it records nothing (its data going stale then is not an
        observation: nobody looked). A file that cannot be written is said once (the hold
        then rests on what others record), never fatal."""
        try:
            recorded = self.evidence.record(report, fresh, changes=not self.refresher.paused)
        except (OSError, ValueError) as exc:  # no value from outside may end the console
            self._evidence_problem(
                f"cannot record evidence in {self.session.store.evidence_where}: {exc}"
            )
            return False
        return recorded > 0

    def judge_now(self, now: datetime, fresh: set[tuple[str, str]]) -> None:
        """The verdicts (raised triggers from the journal, `for` from the evidence), what is
        recorded of them, and the hold over the evidence including them."""
        stage = self.runbook.stage(self.cstate.stage_id)
        runs = self.evidence_runs()
        self.as_judged = self.judged_results(now)  # the header's observed share reads it too
        report = self.session.judge(stage, self.as_judged, now, self.cstate, runs=runs)
        if self.record(report, fresh):
            runs = self.evidence.runs()
        self.report = report
        self.hold = self.session.judge_hold(self.cstate, now, report, runs=runs)

    def close_time(self) -> None:
        """On exit: the open runs' tails go to the file, and this operator has now seen
        everything up to here."""
        with contextlib.suppress(OSError):
            self.evidence.flush()
        with contextlib.suppress(OSError):
            me = person(self.session.journal.actor)
            self.session.store.mark_seen(me, self.clock())

    # -- words --------------------------------------------------------------------------------

    def completed_words(self, now: datetime) -> str:
        done = self.cstate.completed
        return completed_text(done, now) if done is not None else ""

    def hold_words(self, now: datetime) -> tuple[str, list[str]]:
        stage = self.runbook.stage(self.cstate.stage_id)
        notes = hold_notes(self.hold, self.cstate.accepted_gaps, self.cstate.entered_at, now)
        gap = gap_to_accept(self.hold)
        if gap is not None and notes and not self.readonly:
            notes[0] += " · g accepts"
        return hold_line(self.hold, stage), notes

    def trigger_notices(self, now: datetime) -> list[str]:
        """Lesser trigger news for the banner area, while traffic is on the new path."""
        if not self.traffic_live():
            return []
        return trigger_notices(self.report, now)

    def manual_lines(self, now: datetime) -> dict[str, tuple[bool, str]]:
        reports = {t.id: t for t in self.report.triggers} if self.report else {}
        return {
            t.id: (
                t.id in self.cstate.raised,
                manual_line(reports.get(t.id), t.severity, now, keys=not self.readonly),
            )
            for t in self.runbook.triggers
            if t.check is None
        }

    def time_lines(self, now: datetime) -> list[str]:
        """What the help shows of time right now: the hold, accepted gaps, every trigger
        that is waiting, fired or raised, and who has been keeping evidence."""
        stage = self.runbook.stage(self.cstate.stage_id)
        done = self.completed_words(now)
        if done:
            lines = [f"✓ {done}"]
        else:
            line, notes = self.hold_words(now)
            lines = [f"hold of {stage.title}: {line}", *(f"  {n}" for n in notes)]
        if self.report is not None:
            for t in self.report.triggers:
                if t.raised is not None:
                    deadline = deadline_text(t, now)
                    lines.append(
                        f"trigger {t.id} ({t.severity}) RAISED by {t.raised.actor} "
                        f"{at_text(t.raised.at, now)}: {t.raised.note}"
                        + (f"; {deadline}" if deadline else "")
                    )
                elif t.fired is True:
                    deadline = deadline_text(t, now)
                    lines.append(
                        f"trigger {t.id} ({t.severity}) FIRED: {t.judgement.reason}"
                        + (f"; {deadline}" if deadline else "")
                    )
                elif t.pending_s is not None:
                    lines.append(
                        f"trigger {t.id} ({t.severity}) pending {humanize(t.pending_s)} of "
                        f"{humanize(t.for_s)}"
                    )
        lines.append(self.keeper_line(now))
        return lines

    def keeper_line(self, now: datetime) -> str:
        """Who has been recording evidence in this stage: a watcher keeps it while nobody
        has a console open; without one, closing the console leaves a gap."""
        runs = [r for r in self.evidence.runs() if r.stage == self.cstate.stage_id]
        watched = max((r.last for r in runs if r.by == "watch"), default=None)
        if watched is None:
            return (
                "evidence: only consoles and `check` have recorded in this stage; run "
                "`cutover watch` to keep it while nobody has the console open"
            )
        return f"evidence: `cutover watch` last recorded at {at_text(watched, now)}"

    # -- while you were away ------------------------------------------------------------------

    def show_digest(self) -> None:
        """What changed since this operator's last session, when anything did."""
        since, runs = self._away_since, self._away_runs
        self._away_runs = []
        if since is None:
            return  # a first session has nothing to catch up on: the console shows it all
        me = person(self.session.journal.actor)
        now = self.clock()
        stage = self.runbook.stage(self.cstate.stage_id)
        hold = self.hold or self.session.judge_hold(self.cstate, now, None, runs=tuple(runs))
        sections = digest(
            self.runbook,
            events=self.session.journal.read().events,
            runs=runs,
            stage=stage,
            hold=hold,
            since=since,
            now=now,
            me=me,
        )
        if all(s.title == "hold" for s in sections):
            return
        ago = humanize((now - since).total_seconds())
        self.push_screen(
            DigestScreen(f"While you were away: since {at_text(since, now)} ({ago} ago)", sections)
        )
