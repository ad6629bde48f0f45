"""What the watcher does with what is in hand: judge it into evidence, say what changed, take
the stage's snapshots, and roll back when a trigger fires in a stage that arms auto_rollback."""

from __future__ import annotations

from datetime import datetime, timedelta

from cutover.base.errors import CutoverError
from cutover.judge.alarms import fold
from cutover.judge.check import CheckReport, TriggerReport, evaluations, queries_for
from cutover.judge.hold import Hold
from cutover.record import snapshots
from cutover.record.evidence import GATE, TRIGGER, Run
from cutover.record.state import CutoverState
from cutover.runbook.model import Stage
from cutover.traffic import actions
from cutover.watch.words import news

ROLLBACK_PROGRESS_LINES = 8  # then every 10th: a rollback retrying for hours is not a flood


class Judging:
    """The Watcher's judging, snapshots and auto_rollback: mixed into Watcher, whose __init__
    holds their state."""

    # -- judging ----------------------------------------------------------------------------

    def _evaluate(self, now: datetime, current: CutoverState) -> None:
        stage = self.book.stage(current.stage_id)
        report = self.session.judge(stage, self.results, now, current, runs=self.tail.runs)
        fresh, self._fresh = self._fresh, set()
        self._record(report, fresh, now)
        self.tail.read()
        if self.tail.problem is None:
            self._said_once.discard("evidence read")
        else:
            self._say_once(
                "evidence read",
                f"the evidence cannot be read back ({self.tail.problem}): holds are judged "
                "on what was read before",
            )
        self._trim(current, now)
        hold = self.session.judge_hold(current, now, report, runs=self.tail.runs)
        self._alarms, _ = fold(self._alarms, report, now)
        self.report, self.hold = report, hold
        # Said only from results asked for since the database was last back: the outage's
        # not-run results still in hand at recovery are not news.
        ready = all(
            (r := self.results.get(q)) is not None and (r.ran_at or now) >= self._ready_from
            for q in queries_for(self.book, stage)
        )
        if ready and self.db_down_since is None:
            self._announce(stage, current, report, hold)
            self._snapshots(stage, current, now)
        self._auto_rollback(stage, current, report)

    def _record(self, report: CheckReport, fresh: set[str], now: datetime) -> None:
        if not fresh:
            return
        query_of = {(GATE, g.id): g.check.query for g in report.gates}
        query_of |= {(TRIGGER, t.id): t.check.query for t in report.triggers if t.check}
        items = [
            e
            for e in evaluations(report, self._digests, at=now)
            if query_of.get((e.what, e.name)) in fresh
        ]
        try:
            self.store.record(items)
        except OSError as exc:
            if not self._evidence_trouble:
                self._evidence_trouble = True
                self.say(
                    f"evidence cannot be written ({exc}): verdicts go unrecorded, so holds "
                    "cannot count them, until it can"
                )
            return
        if self._evidence_trouble:
            self._evidence_trouble = False
            self.say("evidence is recorded again")

    def _trim(self, current: CutoverState, now: datetime) -> None:
        """Keep what a judgement can still need: the triggers' runs over their longest `for`
        (with room for gaps), and the gates' runs of this stage visit from each gate's
        latest FAIL or WAIT on (a hold restarts there: nothing before it counts any more),
        so a visit of weeks keeps what its last restart left, not every run since entry."""
        entered = current.entered_at or now
        # An escalation counts how long a condition has held, like `for`: keep that long too.
        escalating = max(
            (t.escalate.after_s for t in self.book.triggers if t.escalate is not None),
            default=0.0,
        )
        window = max(self._trigger_window_s, escalating + 2 * self.store.break_s)
        triggers_from = now - timedelta(seconds=window)
        restarted: dict[str, datetime] = {}
        for run in self.tail.runs:
            if run.what == GATE and run.stage == current.stage_id and run.verdict != "pass":
                restarted[run.name] = max(run.last, restarted.get(run.name, run.last))

        def keep(run: Run) -> bool:
            if run.what == TRIGGER:
                return run.last >= triggers_from
            if run.stage != current.stage_id:
                return run.last >= entered
            return run.last >= max(entered, restarted.get(run.name, entered))

        self.tail.trim(keep)

    def _announce(
        self, stage: Stage, current: CutoverState, report: CheckReport, hold: Hold
    ) -> None:
        self._said, lines = news(
            self._said,
            stage=stage,
            current=current,
            report=report,
            hold=hold,
            alarms=self._alarms,
        )
        for line in lines:
            self.say(line)

    # -- snapshots --------------------------------------------------------------------------

    def _snapshots(self, stage: Stage, current: CutoverState, now: datetime) -> None:
        """Entry when the visit is first seen, the latest checkpoint due (one missed while
        nobody watched is not invented afterwards), each once, from results asked for after
        it came due."""
        entered = current.entered_at
        if entered is None:
            return
        wanted = [(snapshots.ENTRY, entered)]
        due = snapshots.due_checkpoints(entered, now, stage.checkpoint_s)
        if due and stage.checkpoint_s:
            wanted.append((due[-1], entered + timedelta(seconds=len(due) * stage.checkpoint_s)))
        for label, due_at in wanted:
            if label in self._taken:
                continue
            fresh = all(
                (r := self.results.get(q)) is not None and (r.ran_at or due_at) >= due_at
                for q in self.book.queries
            )
            if not fresh:
                # Ask every query now rather than wait up to its interval.
                for q, r in self.results.items():
                    if r.ran_at is not None and r.ran_at < due_at:
                        self._due[q] = min(self._due.get(q, now), now)
                continue
            self._snapshot(current.stage_id, current.visit, label, now)

    def _snapshot(self, stage: str, visit: int, label: str, now: datetime) -> None:
        try:
            written = self.session.store.take_snapshot(stage, visit, label, self.results, now)
        except OSError as exc:
            self._say_once(f"snapshot {label}", f"snapshot {stage} {label} not written: {exc}")
            return
        if (stage, visit) == self._visit:
            self._taken.add(label)
        if written:
            self.say(f"snapshot: {stage} {label} ({len(self.results)} queries)", notify=False)

    # -- auto_rollback ----------------------------------------------------------------------

    def _auto_rollback(self, stage: Stage, current: CutoverState, report: CheckReport) -> None:
        if not stage.auto_rollback or self.rolling_back:
            return
        # Fired and critical now: one armed that escalates is a rollback only once it has
        # (a medium one firing first holds the stage); a suspect one never fires.
        armed = [
            t
            for t in report.triggers
            if t.id in stage.auto_rollback
            and t.check is not None
            and t.fired is True
            and t.severity == "critical"
        ]
        if not armed:
            return
        visit = (current.stage_id, current.visit)
        if stage.percent <= 0 or current.percent <= 0 or self._rolled_back == visit:
            return  # rolled back already: not again until traffic is above 0 again
        # Only a current reading may say there is nothing to roll back: while the flag cannot
        # be read, the last reading is history, and the rollback reads the flag itself.
        read = self.flag_state if self.flag_down_since is None else None
        if read is not None and read.percent == 0 and read.in_effect and read.settled:
            self._say_once(
                f"at zero {visit}",
                f"{armed[0].id} fired, but the flag already reads 0 % and it is live: "
                "nothing to roll back (the journal still says "
                f"{current.percent} %: `cutover reconcile` records it)",
            )
            return
        if self.flag is None:
            self._say_once(
                f"no flag {visit}",
                f"! {armed[0].id} FIRED and auto_rollback is armed, but the flag cannot be "
                f"opened ({self.flag_problem}): roll back by hand",
            )
            return
        self._rolled_back = visit
        self._spawn("rollback", self._roll_back(armed[0], stage, current))

    async def _roll_back(
        self, trigger: TriggerReport, stage: Stage, current: CutoverState
    ) -> actions.Outcome:
        assert self.flag is not None
        reason = f"auto_rollback: trigger {trigger.id} fired ({trigger.judgement.reason})"
        self.say(f"! ROLLING BACK {stage.id} ({current.percent} %) to 0 %: {reason}", urgent=True)
        self._rollback_lines = 0
        return await actions.rollback(
            self.session, self.flag, reason=reason, progress=self._rollback_progress
        )

    def _rollback_progress(self, line: str) -> None:
        self._rollback_lines += 1
        n = self._rollback_lines
        if n <= ROLLBACK_PROGRESS_LINES or n % 10 == 0:
            self.say(line, notify=False)

    def _rolled(self, got: actions.Outcome | BaseException) -> None:
        if isinstance(got, actions.Outcome):
            mark = "✓ rolled back" if got.ok else "✗ rollback failed"
            self.say(f"{mark}: {got.message}", urgent=True)
            self._flag_due = self.clock.now()  # read what traffic gets now
            return
        what = str(got) if isinstance(got, CutoverError) else type(got).__name__
        self.say(f"✗ rollback failed: {what}; roll back by hand", urgent=True)
