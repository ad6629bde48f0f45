"""What each rollback trigger last said, remembered across evaluations: a trigger that fired
stays an alarm until a fresh evaluation clears it, and one that cannot be evaluated is
UNKNOWN with its last known value, never quiet. Pure: callers fold reports in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from cutover.judge.check import CheckReport, TriggerReport
from cutover.runbook.frozen import frozen


class TriggerState(StrEnum):
    FIRED = "fired"
    QUIET = "quiet"
    UNKNOWN = "unknown"
    # Past the threshold as a point, undecided as an interval: said and holding advance,
    # never an alarm that rolls back (a known state: it clears a latched alarm like quiet).
    SUSPECT = "suspect"


@frozen
class Seen:
    """One evaluation that could tell: fired or not, with its value and reason."""

    fired: bool
    value: float | None
    reason: str
    at: datetime


@frozen
class Alarm:
    trigger_id: str
    severity: str
    state: TriggerState
    reason: str  # the latest evaluation's reason (why unknown, when unknown)
    last_known: Seen | None = None
    last_fired: Seen | None = None  # the evaluation that fired it, while latched
    since: datetime | None = None  # when `state` began

    @property
    def latched(self) -> bool:
        """Fired, and no fresh evaluation has cleared it since: the banner stays."""
        return self.last_fired is not None

    def describe(self) -> str:
        """One line for a banner, `check` or a notification.

        >>> from datetime import UTC
        >>> at = datetime(2025, 5, 1, 22, 50, tzinfo=UTC)
        >>> fired = Seen(True, 46.0, "46 > 10", at)
        >>> Alarm("stuck", "critical", TriggerState.UNKNOWN, "query failed: database down",
        ...       fired, fired, at).describe()
        'FIRED 46 > 10 at 22:50Z; now unknown: query failed: database down'
        >>> Alarm("stuck", "critical", TriggerState.UNKNOWN, "stale: last ran 3m ago",
        ...       Seen(False, 0.0, "0 ≤ 10", at)).describe()
        'UNKNOWN: stale: last ran 3m ago (last known quiet, 0 ≤ 10 at 22:50Z)'
        """
        if self.state is TriggerState.FIRED:
            return f"FIRED: {self.reason}"
        if self.state is TriggerState.QUIET:
            return f"quiet: {self.reason}"
        if self.state is TriggerState.SUSPECT:
            return f"SUSPECT: {self.reason}"
        if self.last_fired is not None:
            return (
                f"FIRED {self.last_fired.reason} at {self.last_fired.at:%H:%MZ}; "
                f"now unknown: {self.reason}"
            )
        if self.last_known is not None:
            last = self.last_known
            return (
                f"UNKNOWN: {self.reason} (last known {'fired' if last.fired else 'quiet'}, "
                f"{last.reason} at {last.at:%H:%MZ})"
            )
        return f"UNKNOWN: {self.reason}"


@frozen
class Transition:
    """A change worth recording or telling people about: fired, cleared, unknown, known."""

    trigger_id: str
    severity: str
    became: TriggerState
    was: TriggerState | None  # None: the first evaluation
    alarm: Alarm


def state_of(report: TriggerReport) -> TriggerState:
    if report.suspect:
        return TriggerState.SUSPECT
    return {True: TriggerState.FIRED, False: TriggerState.QUIET, None: TriggerState.UNKNOWN}[
        report.fired
    ]


def fold_one(previous: Alarm | None, report: TriggerReport, at: datetime) -> Alarm:
    state = state_of(report)
    reason = report.judgement.reason
    last_known, last_fired = (
        (previous.last_known, previous.last_fired) if previous else (None, None)
    )
    if state is not TriggerState.UNKNOWN:
        seen = Seen(state is TriggerState.FIRED, report.judgement.value, reason, at)
        last_known = seen
        # Only a fresh evaluation that says "quiet" clears a latched alarm.
        last_fired = seen if seen.fired else None
    since = at if previous is None or previous.state is not state else previous.since
    return Alarm(report.id, report.severity, state, reason, last_known, last_fired, since)


def fold(
    alarms: Mapping[str, Alarm], report: CheckReport, at: datetime | None = None
) -> tuple[dict[str, Alarm], list[Transition]]:
    """The alarms after one more report, and what changed."""
    at = at or report.evaluated_at
    out = dict(alarms)
    changes: list[Transition] = []
    for trigger in report.triggers:
        before = alarms.get(trigger.id)
        after = fold_one(before, trigger, at)
        out[trigger.id] = after
        if before is None or before.state is not after.state:
            changes.append(
                Transition(
                    trigger.id,
                    trigger.severity,
                    after.state,
                    before.state if before else None,
                    after,
                )
            )
    return out, changes


def alarming(alarms: Iterable[Alarm], severities: Iterable[str] = ("critical",)) -> list[Alarm]:
    """The alarms a banner shows: fired now, or fired and not cleared since (unknown now)."""
    wanted = set(severities)
    return [a for a in alarms if a.severity in wanted and a.latched]
