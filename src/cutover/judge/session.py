"""One operator's session on one runbook: the runbook, its journal, its database. No UI."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cutover.base import redact
from cutover.judge.wanted import queries_for
from cutover.record import (
    checkpoint,
    evidence,
    identity,
    journal,
    snapshots,
    spill,
    state,
    urgent,
)
from cutover.record.store import Store, open_store
from cutover.runbook.model import Query, Runbook, Stage
from cutover.sources import derived
from cutover.sources.results import QueryResult

if TYPE_CHECKING:  # the driver is imported by the commands that reach the database
    from cutover.judge import trend
    from cutover.judge.check import CheckReport
    from cutover.judge.hold import Hold
    from cutover.sources import db

# Judging (judge.check, compare, trend, hold) is imported where it is first used, not with the
# session: `check` opens the session, sends its queries, and imports it while Postgres works
# (cli/main.py); ~25-40 ms of every check's start that no longer waits before the first query.


def query_args(query: Query, current: state.CutoverState | None) -> tuple[object, ...]:
    """The values a query's `params` name, in order ($1, $2…): "rolled_back_at" is the
    latest rollback's time, None (SQL NULL: the query's own default) before any."""
    values = {"rolled_back_at": current.rolled_back_at if current else None}
    return tuple(values[name] for name in query.params)


@dataclass
class Session:
    runbook: Runbook
    # Holds the token and the DSN: never in a repr (Textual's crash screen shows locals).
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    # Where the record lives (files beside the journal, or the team's Postgres): the journal,
    # evidence, snapshots, seen markers and locks are all read and written through it.
    store: Store = field(init=False, repr=False)
    journal: journal.Journal = field(init=False)
    # Every text this session shows or writes passes through it (DESIGN principle 8).
    redact: redact.Redactor = field(init=False, repr=False)
    # The state folded so far and the last event folded into it: the next state() folds only
    # what the journal verified since (the console asks every second).
    _folded: tuple[int, journal.Event | None, state.CutoverState] | None = field(
        init=False, default=None, repr=False
    )
    # The checkpoint the state is read on from (only the events after it are read), None:
    # from the first event; and the seq of the last checkpoint this session kept or used.
    _checkpoint: checkpoint.Checkpoint | None = field(init=False, default=None, repr=False)
    _kept_seq: int = field(init=False, default=0, repr=False)
    # The trends' readings in the evidence, followed as it grows (created when first asked).
    _readings: trend.Readings | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.redact = redact.for_runbook(self.runbook, self.environ)
        self.store = open_store(
            self.runbook,
            self.environ,
            actor=identity.current_actor(self.environ),
            redact=self.redact,
            key=identity.journal_key(self.environ, self.runbook.journal_key_file),
        )
        self.journal = self.store.journal

    def state(self) -> tuple[state.CutoverState, tuple[str, ...]]:
        """The replayed state and any journal warnings (a torn last line, say). The journal
        is verified as it is read: a broken chain is on the state (`.chain`, which refuses
        advance, step back and sign-off) and is the first warning.

        A verified checkpoint, when the store has one that still applies, spares reading
        the events before it (#20): only those after it are read, verified and folded onto
        its state; the first read that finds it no longer applies reads everything."""
        if self._folded is None and self._checkpoint is None and self._own_journal():
            self._checkpoint = self._load_checkpoint()
        point = self._checkpoint
        read = self.journal.read_from(point.mark) if point is not None else None
        if read is None:
            if point is not None:  # it no longer applies: from the first event from now on
                self._checkpoint, point, self._folded = None, None, None
            read = self.journal.read()
        events = read.events
        folded = self._folded
        if folded and folded[0] and len(events) >= folded[0] and events[folded[0] - 1] is folded[1]:
            current = state.replay(self.runbook, events[folded[0] :], since=folded[2])
        else:  # a first read, or the journal started over (replaced, rewritten, another one)
            current = state.replay(self.runbook, events, since=point.state if point else None)
        self._folded = (len(events), events[-1] if events else None, current)
        warnings = read.warnings
        if read.chain is not None:
            current = replace(current, chain=read.chain)
            warnings = (read.chain.message, *warnings)
        else:
            self._keep_checkpoint(current)
        return current, warnings

    def record_unread(self) -> bool:
        """Has the record never been read by this process (a store that cannot be reached,
        or refuses, since it started)? Its state is then only where a cutover starts."""
        journal = self.journal
        return bool(getattr(journal, "stale", None)) and getattr(journal, "read_at", 1) is None

    def _own_journal(self) -> bool:
        """Is the journal read the store's? The store keeps the checkpoints of its own
        journal; one put in its place (by a test, a bench) has none there."""
        return self.journal is self.store.journal

    def _load_checkpoint(self) -> checkpoint.Checkpoint | None:
        raw = self.store.load_checkpoint(checkpoint.runbook_digest(self.runbook))
        if raw is None:
            return None
        found = checkpoint.decode(raw, self.runbook, self.journal.key)
        if found is not None:
            self._kept_seq = found.mark.seq
        return found

    def _keep_checkpoint(self, current: state.CutoverState) -> None:
        """Leave a checkpoint once this session has read checkpoint.EVERY events past the
        last one, so the next command reads fewer. Never within a rollback (record/urgent:
        the command's or the console's) nor while this process holds the action lock:
        nothing may hold a rollback up. A failure to write is no failure of the command."""
        if (
            not self._own_journal()
            or current.last_seq - self._kept_seq < checkpoint.EVERY
            or urgent.current() is not None
            or self.journal.acting is not None
        ):
            return
        mark = self.journal.mark()
        if mark is None or mark.seq != current.last_seq:
            return  # read meanwhile by another thread, or a partial last event: next time
        try:
            data = checkpoint.encode(
                checkpoint.Checkpoint(mark, current), self.runbook, self.journal.key
            )
            self.store.save_checkpoint(checkpoint.runbook_digest(self.runbook), mark.seq, data)
        except (OSError, ValueError):
            pass  # only a cache: the next command tries again
        else:
            self._kept_seq = mark.seq

    def fold_spilled(self) -> list[str]:
        """Fold records a rollback spilled while the journal could not be written back into
        it (chained, marked as recovered); what was folded, said. The journal still not
        writable: nothing, the spill stays for the next command."""
        try:
            folded = spill.fold(self.journal)
        except OSError:
            return []
        return [
            f"folded {e.kind} (seq {e.seq}) into the journal: written at {e.get('spilled_at')} "
            "while the journal could not be written"
            for e in folded
        ]

    def runner(self, queries: int | None = None) -> db.QueryRunner:
        """A query runner on the runbook's database, with a connection for each of `queries`
        SQL queries at once (default: all of the runbook's) up to db.MAX_CONNECTIONS;
        DatabaseUnavailable without a DSN."""
        from cutover.sources import db

        dsn = db.dsn_from_env(self.runbook.database, self.environ)
        if queries is None:
            queries = sum(q.kind == "sql" for q in self.runbook.queries.values())
        return db.QueryRunner(self.runbook.database, dsn, size=db.pool_size(queries))

    async def run_queries(
        self, runner: db.QueryRunner, query_ids: list[str]
    ) -> dict[str, QueryResult]:
        from cutover.sources.httpquery import run_query

        query_ids = derived.inputs(self.runbook.queries, query_ids)  # what derived ones read
        sql = [self.runbook.queries[q] for q in query_ids if self.runbook.queries[q].kind == "sql"]
        judge_all = getattr(runner, "judge_all", None)
        if judge_all is not None and len(sql) > 1:
            await judge_all(sql)  # one round trip for all, before they take connections
        current = (
            self.state()[0] if any(self.runbook.queries[q].params for q in query_ids) else None
        )
        results = await asyncio.gather(
            *(
                run_query(
                    runner,
                    self.runbook.queries[q],
                    *query_args(self.runbook.queries[q], current),
                    environ=self.environ,
                )
                for q in query_ids
                if self.runbook.queries[q].kind != "derived"
            )
        )
        out = {r.query_id: r for r in results}
        derived.refresh(self.runbook.queries, out)  # from the answers just in hand
        return {q: out[q] for q in query_ids if q in out}

    # -- evidence: verdicts over time -------------------------------------------------------

    @property
    def evidence_path(self):
        """The files store's evidence file (a store on Postgres keeps it in a table)."""
        return evidence.evidence_path(self.runbook.journal_path)

    def evidence_store(
        self, by: str, clock: Callable[[], datetime] | None = None
    ) -> evidence.EvidenceStore:
        """Where this process records its evaluations, by its clock (an evaluation dated
        after it is refused). Runs break at the shortest max_gap of any stage, so no run
        hides a gap that would restart a hold."""
        gap = min((s.max_gap_s for s in self.runbook.stages), default=3600.0)
        return self.store.evidence_writer(
            by,
            break_s=gap,
            flush_s=max(1.0, min(300.0, gap / 4)),
            redact=self.redact,
            clock=clock or (lambda: datetime.now(UTC)),
        )

    def read_evidence(self, since: datetime | None = None) -> evidence.EvidenceRead:
        """The evidence, verified with the journal's key where there is one."""
        return self.store.read_evidence(since)

    def judge(
        self,
        stage: Stage,
        results: Mapping[str, QueryResult],
        now: datetime,
        current: state.CutoverState,
        runs: tuple[evidence.Run, ...] | None = None,
    ) -> CheckReport:
        """Gates and triggers now: raised triggers from the journal, `for` from evidence."""
        from cutover.judge.check import judge_rollback_gates, judge_stage

        # `for` needs since when the condition has held; so do a deadline (high), counted
        # from when it fired, not from each evaluation, and an escalation.
        waiting = [
            t.id
            for t in self.runbook.triggers
            if t.for_s > 0 or t.respond_within_s or t.escalate is not None
        ]
        since = {}
        if waiting:
            runs = runs if runs is not None else self.read_evidence().runs
            for trigger_id in waiting:
                began = evidence.holding_since(runs, trigger_id, now)
                if began is not None:
                    since[trigger_id] = began
        report = judge_stage(
            self.runbook,
            stage,
            results,
            now,
            raised=current.raised,
            acknowledged=current.acknowledged,
            holding_since=since,
            baselines=self.baselines(stage),
            readings=self.trend_readings(stage, now),
        )
        if current.after_rollback is not None:  # the checklist's gates hold the advance too
            report = replace(
                report,
                rollback_gates=judge_rollback_gates(
                    self.runbook, stage, results, now, baselines=self.baselines(stage)
                ),
            )
        return report

    def trend_readings(self, stage: Stage, now: datetime) -> dict[tuple[str, str], list]:
        """The earlier readings of every trend the stage judges, by (GATE or TRIGGER, id),
        from the evidence (followed incrementally: the console asks every second)."""
        from cutover.judge import trend

        trends = {(evidence.GATE, g.id): g.check for g in stage.gates if g.check.trend}
        trends |= {
            (evidence.TRIGGER, t.id): t.check
            for t in self.runbook.triggers
            if t.check is not None and t.check.trend and t.live_in(stage.id)
        }
        if not trends:
            return {}
        if self._readings is None or not set(trends) <= self._readings.names:
            every = self._trend_names()
            self._readings = trend.Readings(self.store.evidence_feed(), self.journal.key, every)
        self._readings.read()
        out = {}
        for (what, name), check in trends.items():
            assert check.trend is not None
            since = now - timedelta(seconds=check.trend.over_s)
            out[(what, name)] = self._readings.series(what, name, since, now)
        return out

    def _trend_names(self) -> set[tuple[str, str]]:
        names = {
            (evidence.GATE, g.id) for s in self.runbook.stages for g in s.gates if g.check.trend
        }
        names |= {
            (evidence.TRIGGER, t.id)
            for t in self.runbook.triggers
            if t.check is not None and t.check.trend
        }
        return names

    def baselines(self, stage: Stage) -> dict[str, snapshots.Snapshot]:
        """The latest exit snapshot of each stage a check of `stage` compares with (stage
        id → snapshot); a stage without one is left out, and its comparisons wait.
        Cheap to call as often as the console judges (the store keeps what it read)."""
        from cutover.judge import compare

        found = {}
        for stage_id in compare.baseline_stages(self.runbook, stage):
            snapshot = self.store.baseline(stage_id)
            if snapshot is not None:
                found[stage_id] = snapshot
        return found

    def judge_hold(
        self,
        current: state.CutoverState,
        now: datetime,
        report: CheckReport | None = None,
        runs: tuple[evidence.Run, ...] | None = None,
        without: Collection[str] = (),
    ) -> Hold:
        """The current stage's hold, by the evidence; a fired medium trigger holds it.
        `without`: gates an override advances past (they WAIT, so they never held)."""
        from cutover.judge.hold import judge_hold

        stage = self.runbook.stage(current.stage_id)
        if runs is None:
            since = current.entered_at
            runs = self.read_evidence(since).runs
        held_by = [t.id for t in (report.fired("medium") if report else ())]
        return judge_hold(
            stage=stage.id,
            gates=[g.id for g in stage.gates if g.id not in without],
            required_s=stage.hold_s,
            entered_at=current.entered_at,
            now=now,
            runs=runs,
            max_gap_s=stage.max_gap_s,
            accepted=[(g.start, g.end) for g in current.accepted_gaps],
            held_by=held_by,
        )

    async def check(
        self,
        runner: db.QueryRunner,
        stage: Stage,
        *,
        record_as: str | None = "check",
        every_query: bool = False,
    ) -> tuple[CheckReport, dict[str, QueryResult]]:
        """Run the stage's queries once (`every_query`: all of them, for a snapshot) and
        judge them; the verdicts go into the evidence (as `record_as`; None records nothing)."""
        looked, _ = self.state()
        wanted = (
            list(self.runbook.queries)
            if every_query
            else queries_for(self.runbook, stage, rollback=looked.after_rollback is not None)
        )
        results = await self.run_queries(runner, wanted)
        current, _ = self.state()
        now = datetime.now(UTC)
        report = self.judge(stage, results, now, current)
        if record_as is not None:
            self.record(report, record_as)
        return report, results

    def record(self, report: CheckReport, by: str) -> None:
        """One report into the evidence, as a one-shot writer (check, advance)."""
        from cutover.judge.check import evaluations

        store = self.evidence_store(by)
        store.record(evaluations(report, self.sql_digests()))
        store.flush()

    def sql_digests(self) -> dict[str, str]:
        return {q.id: evidence.sql_digest(q.describe()) for q in self.runbook.queries.values()}
