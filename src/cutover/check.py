"""Judge a stage: its gates and every trigger, over the latest query results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cutover.caps import printable
from cutover.gates import Judgement, Verdict, judge
from cutover.model import Comparison, Runbook, Stage
from cutover.results import QueryResult


@dataclass(frozen=True)
class GateReport:
    id: str
    title: str
    check: Comparison
    judgement: Judgement

    @property
    def verdict(self) -> Verdict:
        return self.judgement.gate_verdict


@dataclass(frozen=True)
class TriggerReport:
    id: str
    title: str
    severity: str
    check: Comparison
    judgement: Judgement

    @property
    def fired(self) -> bool | None:
        """True fired, False quiet, None unknown (cannot be evaluated: never read as quiet)."""
        return self.judgement.trigger_fired

    @property
    def unknown(self) -> bool:
        return self.fired is None


@dataclass(frozen=True)
class CheckReport:
    stage_id: str
    evaluated_at: datetime
    gates: tuple[GateReport, ...]
    triggers: tuple[TriggerReport, ...]

    @property
    def verdict(self) -> Verdict:
        """FAIL when a gate fails or a trigger fired; WAIT while any gate is undecided or
        any trigger cannot be evaluated (a trigger nobody can read is not a quiet one)."""
        if any(g.verdict is Verdict.FAIL for g in self.gates) or any(
            t.fired is True for t in self.triggers
        ):
            return Verdict.FAIL
        if any(g.verdict is Verdict.WAIT for g in self.gates) or any(
            t.unknown for t in self.triggers
        ):
            return Verdict.WAIT
        return Verdict.PASS

    def fired(self, severity: str | None = None) -> tuple[TriggerReport, ...]:
        return tuple(t for t in self.triggers if t.fired is True and severity in (None, t.severity))

    def unknown(self) -> tuple[TriggerReport, ...]:
        return tuple(t for t in self.triggers if t.unknown)


def queries_for(runbook: Runbook, stage: Stage) -> list[str]:
    """The query ids a check of this stage reads, in runbook order, each once."""
    wanted = {g.check.query for g in stage.gates} | {t.check.query for t in runbook.triggers}
    return [q for q in runbook.queries if q in wanted]


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
) -> CheckReport:
    """Staleness is judged against the runbook's refresh interval, whatever the console's
    + or pause did: slowing a gate's query must make its verdict wait, not look fresh."""
    now = now or datetime.now(UTC)

    def one(check: Comparison) -> Judgement:
        result = results.get(check.query)
        refresh = runbook.queries[check.query].refresh_s
        stale = is_stale(result.ran_at if result else None, refresh, now)
        return judge(check, result, stale=stale, now=now)

    gates = tuple(GateReport(g.id, g.title, g.check, one(g.check)) for g in stage.gates)
    triggers = tuple(
        TriggerReport(t.id, t.title, t.severity, t.check, one(t.check)) for t in runbook.triggers
    )
    return CheckReport(stage_id=stage.id, evaluated_at=now, gates=gates, triggers=triggers)


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(float(value), 4)


def report_json(report: CheckReport) -> dict:
    """The `check --json` shape of DESIGN.md. Text is bounded and inert (caps.printable):
    a consumer may print a reason as it is."""

    def interval(j: Judgement) -> list[float] | None:
        return None if j.interval is None else [round(j.interval[0], 2), round(j.interval[1], 2)]

    return {
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
            }
            for g in report.gates
        ],
        "triggers": [
            {
                "id": printable(t.id),
                "query": printable(t.check.query),
                "fired": t.fired,
                "severity": t.severity,
                "value": _number(t.judgement.value),
                "interval": interval(t.judgement),
                "op": t.check.op,
                "threshold": _number(t.check.value),
                "reason": printable(t.judgement.reason),
            }
            for t in report.triggers
        ],
    }
