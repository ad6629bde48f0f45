"""Judge a stage: its gates and every trigger, over the latest query results."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cutover.base.finite import json_number
from cutover.judge import compare
from cutover.judge.gates import judge
from cutover.judge.verdicts import Judgement, Side, Verdict, Why
from cutover.record.evidence import GATE, TRIGGER, Evaluation
from cutover.record.snapshots import Snapshot
from cutover.record.state import Raised
from cutover.runbook.durations import humanize
from cutover.runbook.model import Comparison, Runbook, Stage
from cutover.sources.caps import printable
from cutover.sources.results import QueryResult


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    def holds_advance(self) -> bool:
        """A critical or medium trigger pending on `for` may become a rollback or a held
        stage: it stops an advance as a fired one does (a high one has its deadline)."""
        return self.pending_s is not None and self.severity in ("critical", "medium")

    @property
    def state(self) -> str:
        """One word for screens and --json: fired, pending, quiet or unknown."""
        if self.pending_s is not None:
            return "pending"
        return {True: "fired", False: "quiet", None: "unknown"}[self.fired]

    def pending_words(self) -> str:
        """'pending 4s of 20s' while pending; '' otherwise."""
        if self.pending_s is None:
            return ""
        return f"pending {humanize(self.pending_s)} of {humanize(self.for_s)}"

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


@dataclass(frozen=True)
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


def queries_for(runbook: Runbook, stage: Stage, *, rollback: bool = False) -> list[str]:
    """The query ids a check of this stage reads, in runbook order, each once; with
    `rollback`, the rollback checklist's gates' too."""
    wanted = {g.check.query for g in stage.gates} | {
        t.check.query for t in runbook.triggers if t.check is not None
    }
    if rollback and runbook.rollback is not None:
        wanted |= {g.check.query for g in runbook.rollback.gates}
    return [q for q in runbook.queries if q in wanted]


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
) -> CheckReport:
    """Staleness is judged against the runbook's refresh interval, whatever the console's
    + or pause did: slowing a gate's query must make its verdict wait, not look fresh.

    `raised`: manual (or raised) triggers, from the journal. `holding_since`: for each
    trigger, since when its condition has held without a quiet evaluation, by the evidence
    (`evidence.holding_since`); a trigger with `for` fires only once that is long enough.
    `baselines`: stage id → its latest exit snapshot (`Session.baselines`), for comparisons
    `against = { baseline = … }`; one that is missing (or None: not looked up) makes its
    gate wait."""
    now = now or datetime.now(UTC)
    raised = raised or {}
    holding_since = holding_since or {}

    def one(check: Comparison) -> Judgement:
        result = results.get(check.query)
        refresh = runbook.queries[check.query].refresh_s
        stale = is_stale(result.ran_at if result else None, refresh, now)
        baseline = compare.baseline_for(runbook, stage, check, baselines)
        return judge(check, result, stale=stale, now=now, baseline=baseline)

    gates = tuple(GateReport(g.id, g.title, g.check, one(g.check), g.optional) for g in stage.gates)
    triggers = []
    for t in runbook.triggers:
        up = raised.get(t.id)
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
        judgement = one(t.check)
        held = None
        if judgement.trigger_fired is True:
            since = min(holding_since.get(t.id, now), now)
            held = (now - since).total_seconds()
        triggers.append(
            TriggerReport(
                t.id,
                t.title,
                t.severity,
                t.check,
                judgement,
                t.for_s,
                held,
                up,
                t.respond_within_s,
                (acknowledged or {}).get(t.id),
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
                j.value,
                j.interval,
                j.reason,
                digests.get(gate.check.query, ""),
                at,
                j.trials,
            )
        )
    for trigger in report.triggers:
        if trigger.check is None:
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
                j.value,
                j.interval,
                j.reason,
                digests.get(trigger.check.query, ""),
                at,
            )
        )
    return out
