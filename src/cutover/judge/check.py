"""Judge a stage: its gates and every trigger, over the latest query results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cutover.base.finite import json_number
from cutover.judge import compare
from cutover.judge.gates import judge
from cutover.judge.trend import Reading
from cutover.judge.verdicts import Judgement, Side, Verdict, Why, decide
from cutover.judge.wanted import queries_for as queries_for  # its users import it from here
from cutover.record.evidence import GATE, TRIGGER, Evaluation
from cutover.record.snapshots import Snapshot
from cutover.record.state import Raised
from cutover.runbook.durations import humanize
from cutover.runbook.frozen import frozen
from cutover.runbook.model import Comparison, Runbook, Stage
from cutover.sources.caps import printable
from cutover.sources.results import QueryResult


@frozen
class GateReport:
    id: str
    title: str
    check: Comparison
    judgement: Judgement
    optional: bool = False

    @property
    def verdict(self) -> Verdict:
        return self.judgement.gate_verdict

    @property
    def counts(self) -> bool:
        """An optional gate whose query lacks a column it needs does not hold the stage
        (it says so); every other gate counts, WAIT included."""
        return not (self.optional and self.judgement.why is Why.LACKING)


@frozen
class TriggerReport:
    id: str
    title: str
    severity: str
    check: Comparison | None  # None: a manual trigger
    judgement: Judgement
    for_s: float = 0.0
    # How long the condition has held without a quiet evaluation, by the evidence and this
    # evaluation; None when it does not hold now.
    held_s: float | None = None
    raised: Raised | None = None
    respond_within_s: float | None = None
    acknowledged: Raised | None = None  # a note that answered it (`cutover clear ID --note`)
    # False: not live in the stage judged (`stages = [...]` leaves it out): shown as off,
    # never fired, unknown or pending, and not recorded.
    live: bool = True
    # The runbook's severity when `escalate` raised it (the condition held long enough).
    escalated_from: str | None = None

    @property
    def fired(self) -> bool | None:
        """True fired, False quiet (or pending on `for`), None unknown (cannot be evaluated:
        never read as quiet). A raised trigger is fired, whatever any query says."""
        if self.raised is not None:
            return True
        holds = self.judgement.trigger_fired
        if holds is True and self.for_s > 0:
            return (self.held_s or 0.0) >= self.for_s
        return holds

    @property
    def pending_s(self) -> float | None:
        """While the condition holds but has not held for `for` yet: how long it has."""
        if self.fired is False and self.judgement.trigger_fired is True:
            return self.held_s or 0.0
        return None

    @property
    def unknown(self) -> bool:
        return self.fired is None

    @property
    def suspect(self) -> bool:
        """Its point estimate is past the threshold while its interval still straddles it
        (18 of 20 is 90 %, below 95, and 76–97 % as an interval): not evidence enough to
        fire, too much to call quiet. It holds advance and is said, never rolls back."""
        j, check = self.judgement, self.check
        if not self.live or check is None or self.raised is not None or self.fired is not False:
            return False
        if j.why is not Why.UNDECIDED or j.value is None or check.op in ("==", "!="):
            return False
        return decide(check.op, j.value, j.value, check.value) is True

    @property
    def holds_advance(self) -> bool:
        """A critical or medium trigger pending on `for` may become a rollback or a held
        stage: it stops an advance as a fired one does (a high one has its deadline). A
        suspect one stops it too: more data may make it fire."""
        if self.suspect:
            return True
        return self.pending_s is not None and self.severity in ("critical", "medium")

    @property
    def state(self) -> str:
        """One word for screens and --json: fired, pending, suspect, quiet, unknown or off
        (not live in this stage)."""
        if not self.live:
            return "off"
        if self.pending_s is not None:
            return "pending"
        if self.suspect:
            return "suspect"
        return {True: "fired", False: "quiet", None: "unknown"}[self.fired]

    def pending_words(self) -> str:
        """'pending 4s of 20s' while pending; 'suspect: about 40 more total_imports decide
        it' while suspect; '' otherwise."""
        if self.suspect:
            return "suspect: " + self.decided_by()
        if self.pending_s is None:
            return ""
        return f"pending {humanize(self.pending_s)} of {humanize(self.for_s)}"

    def decided_by(self) -> str:
        """What would decide an undecided trigger, in words."""
        check, more = self.check, self.judgement.more
        what = (check.trials if check is not None else None) or "data"
        if check is not None and check.trend is not None:
            return "more readings decide it"
        if more is None or more <= 0:
            return f"more {what} decide it"
        return f"about {more:,} more {what} decide it"

    def fired_at(self, now: datetime) -> datetime | None:
        """When it fired: raised, or when the condition had held for `for`."""
        if self.raised is not None:
            return self.raised.at
        if self.fired is True:
            return now - timedelta(seconds=max(0.0, (self.held_s or 0.0) - self.for_s))
        return None

    def answered(self, now: datetime) -> Raised | None:
        """The note that answered this firing: given after it fired (a note about an
        earlier firing does not answer a new one)."""
        at = self.fired_at(now)
        ack = self.acknowledged
        if at is None or ack is None or ack.at < at:
            return None
        return ack

    def deadline(self, now: datetime) -> datetime | None:
        """A high trigger's "roll back by" time; None once a note has answered it."""
        at = self.fired_at(now)
        if at is None or self.respond_within_s is None or self.answered(now) is not None:
            return None
        return at + timedelta(seconds=self.respond_within_s)


@frozen
class CheckReport:
    stage_id: str
    evaluated_at: datetime
    gates: tuple[GateReport, ...]
    triggers: tuple[TriggerReport, ...]
    # The rollback checklist's gates, judged while it is open (after a rollback, until the
    # next advance); they count toward the verdict like the stage's.
    rollback_gates: tuple[GateReport, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """FAIL when a gate fails or a trigger fired; WAIT while any gate is undecided, any
        trigger cannot be evaluated (a trigger nobody can read is not a quiet one) or a
        critical or medium one is pending on `for` (it may yet fire)."""
        # An optional gate whose query lacks a column it needs does not count (it says so).
        gates = [g for g in (*self.gates, *self.rollback_gates) if g.counts]
        if any(g.verdict is Verdict.FAIL for g in gates) or any(
            t.fired is True for t in self.triggers
        ):
            return Verdict.FAIL
        if any(g.verdict is Verdict.WAIT for g in gates) or any(
            t.unknown or t.holds_advance for t in self.triggers
        ):
            return Verdict.WAIT
        return Verdict.PASS

    def fired(self, severity: str | None = None) -> tuple[TriggerReport, ...]:
        return tuple(t for t in self.triggers if t.fired is True and severity in (None, t.severity))

    def unknown(self) -> tuple[TriggerReport, ...]:
        return tuple(t for t in self.triggers if t.unknown)


def judge_rollback_gates(
    runbook: Runbook,
    stage: Stage,
    results: Mapping[str, QueryResult],
    now: datetime | None = None,
    baselines: Mapping[str, Any] | None = None,
) -> tuple[GateReport, ...]:
    """The rollback checklist's gates over the latest results, judged exactly as the
    current stage's gates are (they are that stage's extra gates while it is open)."""
    if runbook.rollback is None or not runbook.rollback.gates:
        return ()
    extra = replace(stage, gates=runbook.rollback.gates)
    return judge_stage(runbook, extra, results, now, baselines=baselines).gates


def is_stale(ran_at: datetime | None, refresh_s: float, now: datetime) -> bool:
    """A result older than two refresh intervals no longer speaks for the present. The one
    rule for the verdicts and for the STALE mark on screen.

    Never-run is its own reason, not staleness."""
    return ran_at is not None and (now - ran_at).total_seconds() > 2 * refresh_s


def judge_stage(
    runbook: Runbook,
    stage: Stage,
    results: Mapping[str, QueryResult],
    now: datetime | None = None,
    *,
    raised: Mapping[str, Raised] | None = None,
    holding_since: Mapping[str, datetime] | None = None,
    baselines: Mapping[str, Snapshot] | None = None,
    acknowledged: Mapping[str, Raised] | None = None,
    readings: Mapping[tuple[str, str], Sequence[Reading]] | None = None,
) -> CheckReport:
    """Staleness is judged against the runbook's refresh interval, whatever the console's
    + or pause did: slowing a gate's query must make its verdict wait, not look fresh.

    `raised`: manual (or raised) triggers, from the journal. `holding_since`: for each
    trigger, since when its condition has held without a quiet evaluation, by the evidence
    (`evidence.holding_since`); a trigger with `for` fires only once that is long enough.
    `baselines`: stage id → its latest exit snapshot (`Session.baselines`), for comparisons
    `against = { baseline = … }`; one that is missing (or None: not looked up) makes its
    gate wait. `readings`: (GATE or TRIGGER, id) → a trend's earlier readings, from the
    evidence (trend.Readings)."""
    now = now or datetime.now(UTC)
    raised = raised or {}
    holding_since = holding_since or {}
    readings = readings or {}

    def one(check: Comparison, key: tuple[str, str]) -> Judgement:
        result = results.get(check.query)
        refresh = runbook.queries[check.query].refresh_s
        stale = is_stale(result.ran_at if result else None, refresh, now)
        baseline = compare.baseline_for(runbook, stage, check, baselines)
        return judge(
            check,
            result,
            stale=stale,
            now=now,
            baseline=baseline,
            readings=readings.get(key, ()),
        )

    gates = tuple(
        GateReport(g.id, g.title, g.check, one(g.check, (GATE, g.id)), g.optional)
        for g in stage.gates
    )
    triggers = []
    for t in runbook.triggers:
        up = raised.get(t.id)
        if not t.live_in(stage.id) and up is None:
            scope = ", ".join(t.stages)
            judgement = Judgement(False, None, None, f"not live in {stage.id} (live in {scope})")
            triggers.append(
                TriggerReport(t.id, t.title, t.severity, t.check, judgement, live=False)
            )
            continue
        if t.check is None:
            reason = (
                f"raised by {up.actor} at {up.at:%Y-%m-%d %H:%MZ}: {up.note}"
                if up
                else "not raised (a person raises it: cutover raise)"
            )
            judgement = Judgement(up is not None, None, None, reason)
            triggers.append(
                TriggerReport(
                    t.id, t.title, t.severity, None, judgement, 0.0, None, up, t.respond_within_s
                )
            )
            continue
        judgement = one(t.check, (TRIGGER, t.id))
        held = None
        if judgement.trigger_fired is True:
            since = min(holding_since.get(t.id, now), now)
            held = (now - since).total_seconds()
        severity, escalated = t.severity, None
        if t.escalate is not None and held is not None and held >= t.escalate.after_s:
            # Held this long by the evidence: "if it persists > 6 h, roll back".
            severity, escalated = t.escalate.severity, t.severity
        triggers.append(
            TriggerReport(
                t.id,
                t.title,
                severity,
                t.check,
                judgement,
                t.for_s,
                held,
                up,
                t.respond_within_s,
                (acknowledged or {}).get(t.id),
                escalated_from=escalated,
            )
        )
    return CheckReport(stage_id=stage.id, evaluated_at=now, gates=gates, triggers=tuple(triggers))


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float | None) -> float | str | None:
    if value is None or not math.isfinite(value):
        return json_number(value)  # ±Infinity (a value) or NaN, named as text
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _rounded(value: float) -> float | str | None:
    return round(value, 2) if math.isfinite(value) else json_number(value)


def report_json(report: CheckReport) -> dict:
    """The `check --json` shape of DESIGN.md. Text is bounded and inert (caps.printable):
    a consumer may print a reason as it is."""

    def interval(j: Judgement) -> list[float] | None:
        return None if j.interval is None else [_rounded(j.interval[0]), _rounded(j.interval[1])]

    def against(j: Judgement) -> dict | None:
        """The other side of a two-sample comparison (value/interval are the difference)."""
        other: Side | None = j.other
        if other is None:
            return None
        return {
            "label": printable(other.label),
            "value": _number(other.value),
            "text": printable(other.text),
            "baseline": other.baseline,
            "at": _iso(other.at),
            "p_value": None if j.p_value is None else round(j.p_value, 6),
        }

    def baseline(check: Comparison | None) -> str | None:
        return check.against.baseline if check and check.against else None

    out = {
        "stage": report.stage_id,
        "verdict": report.verdict.value,
        "evaluated_at": report.evaluated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "gates": [
            {
                "id": printable(g.id),
                "query": printable(g.check.query),
                "verdict": g.verdict.value,
                "value": _number(g.judgement.value),
                "interval": interval(g.judgement),
                "op": g.check.op,
                "threshold": _number(g.check.value),
                "reason": printable(g.judgement.reason),
                # how many more trials would decide a WAIT (null: unknown, or none would)
                "more": g.judgement.more,
                "against": against(g.judgement),
                "baseline": baseline(g.check),
                # False: an optional gate whose query lacks a column it needs; it does not
                # hold the stage (its reason says what to add)
                "counts": g.counts,
            }
            for g in report.gates
        ],
        "triggers": [
            {
                "id": printable(t.id),
                "query": printable(t.check.query) if t.check else None,
                "kind": "manual" if t.check is None else "query",
                "fired": t.fired,
                "state": t.state,
                # suspect: past the threshold as a point, undecided as an interval
                "suspect": t.suspect,
                "decided_by": t.decided_by() if t.suspect else None,
                "escalated_from": t.escalated_from,
                "pending_s": None if t.pending_s is None else round(t.pending_s),
                "for_s": t.for_s or None,
                "raised": None
                if t.raised is None
                else {"by": t.raised.actor, "at": _iso(t.raised.at), "note": t.raised.note},
                "deadline": _iso(t.deadline(report.evaluated_at)),
                "answered": None
                if t.answered(report.evaluated_at) is None
                else {
                    "by": t.acknowledged.actor,
                    "at": _iso(t.acknowledged.at),
                    "note": t.acknowledged.note,
                },
                "severity": t.severity,
                "more": t.judgement.more,
                "value": _number(t.judgement.value),
                "interval": interval(t.judgement),
                "op": t.check.op if t.check else None,
                "threshold": _number(t.check.value) if t.check else None,
                "reason": printable(t.judgement.reason),
                "against": against(t.judgement),
                "baseline": baseline(t.check),
            }
            for t in report.triggers
        ],
    }
    if report.rollback_gates:  # the checklist's gates, in the same shape as the stage's
        checklist = replace(report, gates=report.rollback_gates, rollback_gates=(), triggers=())
        out["rollback_gates"] = report_json(checklist)["gates"]
    return out


def evaluations(
    report: CheckReport, digests: dict[str, str], at: datetime | None = None
) -> list[Evaluation]:
    """Every gate and trigger verdict of one report, as evidence. A query that has not run
    yet (a console just started) is no evaluation at all, so it is not recorded: it must
    not restart a hold that the watcher is keeping."""
    at = at or report.evaluated_at
    out = []
    for gate in (*report.gates, *report.rollback_gates):
        j = gate.judgement
        if j.why is Why.NOT_RUN:
            continue
        # An optional gate that does not apply here is "n/a": it neither holds nor breaks
        # the hold (hold.py treats it as covered).
        verdict = gate.verdict.value if gate.counts else "n/a"
        out.append(
            Evaluation(
                GATE,
                gate.id,
                report.stage_id,
                verdict,
                # a trend's evidence keeps the reading: the next evaluation's series
                j.value if j.reading is None else j.reading,
                j.interval,
                j.reason,
                digests.get(gate.check.query, ""),
                at,
                j.trials,
            )
        )
    for trigger in report.triggers:
        if trigger.check is None or not trigger.live:
            continue  # a manual trigger is raised and cleared in the journal
        j = trigger.judgement
        if j.why is Why.NOT_RUN:
            continue
        # The condition, not the alarm: a trigger with `for` fires once this has held long
        # enough, which is what the evidence is for.
        verdict = {True: "fired", False: "quiet", None: "unknown"}[j.trigger_fired]
        out.append(
            Evaluation(
                TRIGGER,
                trigger.id,
                report.stage_id,
                verdict,
                j.value if j.reading is None else j.reading,
                j.interval,
                j.reason,
                digests.get(trigger.check.query, ""),
                at,
            )
        )
    return out
