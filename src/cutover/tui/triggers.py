"""What the console remembers of each trigger and shows of it: a fired trigger stays an alarm
until fresh data clears it, one that cannot be evaluated is UNKNOWN with its last known value
(cutover.judge.alarms keeps the memory), and each panel's gate and trigger lines say so in words."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from cutover.judge.alarms import Alarm, TriggerState, alarming, fold_one
from cutover.judge.check import CheckReport
from cutover.judge.reading import select_row
from cutover.judge.verdicts import Judgement
from cutover.runbook.model import Comparison
from cutover.sources.results import QueryResult
from cutover.tui.text import (
    FIRED_MARK,
    QUIET_MARK,
    SUSPECT_MARK,
    UNKNOWN_MARK,
    VERDICT_MARK,
    cell_text,
    clean,
)
from cutover.tui.time_text import WAITING_MARK, deadline_text, pending_text

OFF_MARK = "- off"  # not live in this stage (`stages = [...]`)
TRIGGER_MARK = {
    TriggerState.FIRED: FIRED_MARK,
    TriggerState.QUIET: QUIET_MARK,
    TriggerState.UNKNOWN: UNKNOWN_MARK,
    TriggerState.SUSPECT: SUSPECT_MARK,
}


class TriggersMixin:
    """Mixed into CutoverApp; expects alarms, results, report, runbook, flag_state, cstate,
    refresher."""

    def _remember(self, report: CheckReport, now: datetime) -> dict[str, Alarm]:
        """Fold the report into what each trigger last said. A reading is dated by the data
        it judged (the query's run), so "FIRED 46 > 10 at 22:50Z" is when it was seen."""
        alarms = dict(self.alarms)
        for trigger in report.triggers:
            if trigger.check is None:  # a manual trigger: dated by its raise
                at = trigger.raised.at if trigger.raised is not None else now
                alarms[trigger.id] = fold_one(alarms.get(trigger.id), trigger, at)
                continue
            result = self.results.get(trigger.check.query)
            known = trigger.fired is not None and result is not None and result.ran_at
            at = result.ran_at if known else now
            alarms[trigger.id] = fold_one(alarms.get(trigger.id), trigger, at)
        return alarms

    def traffic_live(self) -> bool:
        """Whether traffic may be on the new path: then a trigger is worth a banner."""
        read = self.flag_state.percent if self.flag_state else None
        return (read if read is not None else self.cstate.percent) > 0

    def latched_critical(self) -> list[Alarm]:
        """Critical triggers that fired and that no fresh evaluation has cleared since."""
        return alarming(self.alarms.values()) if self.traffic_live() else []

    def banner_alarms(self) -> list[tuple[str, Alarm]]:
        """What the banner shows: latched critical triggers, and critical ones that cannot
        be evaluated (once the console has tried: not while it is still connecting)."""
        if not self.traffic_live():
            return []
        titles = {t.id: t.title or t.id for t in self.runbook.triggers}
        tried = self.refresher.db_up is not None
        return [
            (titles.get(a.trigger_id, a.trigger_id), a)
            for a in self.alarms.values()
            if a.severity == "critical"
            and (a.latched or (tried and a.state is TriggerState.UNKNOWN))
        ]

    def verdict_lines(self, query_id: str) -> list[Text]:
        if self.report is None:
            return []
        lines = []
        for gate in self.report.gates:
            if gate.check.query == query_id:
                lines.append(
                    Text(
                        f"{VERDICT_MARK[gate.verdict]} gate {clean(gate.id)}: ",
                        no_wrap=True,
                        overflow="ellipsis",
                    )
                    + reading(gate.check, self.results.get(query_id), gate.judgement)
                    + Text(clean(gate.judgement.reason), style="dim")
                )
        for trigger in self.report.triggers:
            if trigger.check is not None and trigger.check.query == query_id:
                alarm = self.alarms.get(trigger.id)
                state = alarm.state if alarm else TriggerState.UNKNOWN
                mark = TRIGGER_MARK[state]
                said = trigger.judgement.reason
                if alarm is not None and state is TriggerState.UNKNOWN:
                    # Its last known value and when, never a bare "quiet".
                    said = alarm.describe().removeprefix("UNKNOWN: ")
                waiting = trigger.pending_s is not None or trigger.suspect
                if not trigger.live:
                    mark = OFF_MARK
                elif trigger.pending_s is not None:
                    # The condition holds, not yet for its `for`: not quiet, not fired.
                    mark = f"{WAITING_MARK} PENDING"
                    said = f"{pending_text(trigger)} · {said}"
                elif trigger.suspect:
                    # Past its threshold as a point, not as an interval: holds advance.
                    said = f"{trigger.decided_by()}; holds advance · {said}"
                elif trigger.fired is True and trigger.severity == "high":
                    deadline = deadline_text(trigger, self.clock())
                    said += f" · {deadline}" if deadline else ""
                elif trigger.fired is True and trigger.severity == "medium":
                    said += " · holds the stage (extend monitoring)"
                if trigger.escalated_from:
                    said = f"escalated from {trigger.escalated_from} · {said}"
                lines.append(
                    Text(
                        f"{mark} trigger {clean(trigger.id)} ({trigger.severity}): ",
                        style="" if state is TriggerState.QUIET and not waiting else "bold",
                        no_wrap=True,
                        overflow="ellipsis",
                    )
                    + reading(trigger.check, self.results.get(query_id), trigger.judgement)
                    + Text(clean(said), style="dim")
                )
        return lines


def reading(
    check: Comparison, result: QueryResult | None, judgement: Judgement | None = None
) -> Text:
    """What a gate or trigger reads, named, with the value the query gave it:
    `success_rate_pct = 98.2 · `; for a comparison both sides, the baseline's beside the
    current value (`now 98.1 % (990/1,009) vs canary exit 97.0 % (485/500) · `); the
    columns of a proportion (their counts follow in the reason); nothing for a row count."""
    if judgement is not None and judgement.this is not None and judgement.other is not None:
        this, other = judgement.this, judgement.other
        return Text(f"{clean(this.label)} {clean(this.text)} vs {clean(other.label)} ") + Text(
            f"{clean(other.text)} · ", style="italic"
        )
    if check.column is not None:
        row = select_row(result, check.row) if result is not None else None
        if row is None or check.column not in row:
            return Text(f"{clean(check.column)} · ")
        return Text(f"{clean(check.column)} = {cell_text(row[check.column])} · ")
    if check.successes is not None and check.trials is not None:
        return Text(f"{clean(check.successes)}/{clean(check.trials)} · ")
    return Text("")
