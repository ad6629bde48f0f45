"""Time in words for the console: the hold as the evidence judges it (and why it restarted,
which gaps were accepted, what holds it back), triggers waiting on `for`, a high trigger's
deadline, a medium one holding the stage, a manual trigger raised, a completed cutover.
Plain strings: the widgets style them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from cutover.judge.check import CheckReport, TriggerReport
from cutover.judge.hold import Hold
from cutover.record.state import AcceptedGap, Completed
from cutover.runbook.durations import humanize
from cutover.runbook.model import Stage

WAITING_MARK = "◔"


def at_text(at: datetime, now: datetime) -> str:
    """A time of day, with the date when it is not today's (a cutover runs for weeks).

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    >>> at_text(datetime(2026, 11, 20, 2, 14, tzinfo=UTC), now)
    '02:14Z'
    >>> at_text(datetime(2026, 11, 18, 23, 5, tzinfo=UTC), now)
    '11-18 23:05Z'
    """
    if at.date() == now.date():
        return f"{at:%H:%MZ}"
    return f"{at:%m-%d %H:%MZ}"


def span_text(start: datetime, end: datetime, now: datetime) -> str:
    """`00:04–02:14Z`, with dates where they differ from today's."""
    first = at_text(start, now).removesuffix("Z")
    if start.date() == end.date() and end.date() != now.date():
        return f"{first}–{end:%H:%MZ}"
    return f"{first}–{at_text(end, now)}"


def hold_line(hold: Hold | None, stage: Stage) -> str:
    """The hold in a few words for the header, the runbook pane and the pane's stage line.

    >>> from datetime import UTC
    >>> from cutover.judge.hold import GateHold
    >>> at = datetime(2026, 11, 20, 2, 14, tzinfo=UTC)
    >>> canary = Stage("canary", "Canary", 10, hold_s=86400)
    >>> hold = Hold(86400, 90000, 46920, at, at, "success: a 2h 10m gap (no evaluation)",
    ...             (GateHold("success", 46920, at, at, "a 2h 10m gap (no evaluation)"),))
    >>> hold_line(hold, canary)
    'success PASS for 13h 2m of 1d'
    >>> hold_line(Hold(86400, 90000, 0, None, at, "success: FAIL (80 < 95)",
    ...                (GateHold("success", 0, None, at, "FAIL (80 < 95)"),)), canary)
    'held 0s of 1d'
    >>> hold_line(Hold(86400, 90000, 86400, at, None, None), canary)
    'hold ✓ 1d met'
    >>> hold_line(None, canary)
    'hold … not judged yet'
    """
    if hold is None:
        return "hold … not judged yet" if stage.hold_s > 0 else "no hold"
    if hold.required_s <= 0:
        return "no hold" if not hold.held_by else "no hold, but held back"
    if hold.met:
        return f"hold ✓ {humanize(hold.required_s)} met"
    if hold.held_s >= hold.required_s:
        return f"{humanize(hold.required_s)} held, but held back by {', '.join(hold.held_by)}"
    of = f"{humanize(hold.held_s)} of {humanize(hold.required_s)}"
    if not hold.gates:
        return f"held {of} (time in the stage: it has no gates)"
    if hold.since is None or hold.held_s <= 0:
        return f"held {of}"
    weakest = min(hold.gates, key=lambda g: g.held_s)
    if len(hold.gates) > 1 and all(g.since == weakest.since for g in hold.gates):
        return f"every gate PASS for {of}"
    return f"{weakest.gate} PASS for {of}"


def hold_notes(
    hold: Hold | None,
    accepted: Iterable[AcceptedGap],
    entered_at: datetime | None,
    now: datetime,
) -> list[str]:
    """What the hold line leaves out: why and when it restarted, what holds it back, and
    the gaps people accepted during this visit (shown from then on, with their note).

    >>> from datetime import UTC, timedelta
    >>> now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    >>> at = now.replace(hour=2, minute=14)
    >>> hold = Hold(86400, 90000, 100, at, at, "success: a 2h 10m gap (no evaluation)")
    >>> gap = AcceptedGap(at - timedelta(hours=2, minutes=10), at, "alice", "host rebooted")
    >>> for note in hold_notes(hold, [gap], now - timedelta(days=1), now):
    ...     print(note)
    restarted 02:14Z after success: a 2h 10m gap (no evaluation)
    gap 00:04–02:14Z accepted by alice: host rebooted
    """
    notes: list[str] = []
    if hold is not None and hold.required_s > 0 and not hold.met and hold.restart_reason:
        if hold.restarted_at is not None:
            notes.append(f"restarted {at_text(hold.restarted_at, now)} after {hold.restart_reason}")
        else:
            notes.append(hold.restart_reason)
    if hold is not None and hold.held_by:
        notes.append(f"held back by {', '.join(hold.held_by)} (medium: extend monitoring)")
    for gap in accepted:
        if entered_at is None or gap.end >= entered_at:
            notes.append(
                f"gap {span_text(gap.start, gap.end, now)} accepted by {gap.actor}: {gap.note}"
            )
    return notes


def gap_to_accept(hold: Hold | None) -> tuple[datetime, datetime] | None:
    """The gap `g` would accept: the latest one that restarted the hold, while unmet."""
    if hold is None or hold.met:
        return None
    return hold.gap


def deadline_text(trigger: TriggerReport, now: datetime) -> str:
    """A fired high trigger's deadline, or '' when it has none.

    >>> from datetime import UTC, timedelta
    >>> from cutover.record.state import Raised
    >>> from cutover.judge.verdicts import Judgement
    >>> now = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    >>> up = Raised("alice", now - timedelta(minutes=16), "3 users report failures")
    >>> t = TriggerReport("complaints", "", "high", None, Judgement(True, None, None, ""),
    ...                   raised=up, respond_within_s=3600)
    >>> deadline_text(t, now)
    'roll back by 03:14Z unless cleared with a note (44m left)'
    >>> deadline_text(t, now + timedelta(hours=1))
    'roll back by 03:14Z unless cleared with a note: OVERDUE by 16m'
    """
    by = trigger.deadline(now)
    if by is None:
        return ""
    unless = "unless cleared with a note" if trigger.check is None else "unless it clears"
    left = (by - now).total_seconds()
    when = f"({humanize(left)} left)" if left > 0 else f": OVERDUE by {humanize(-left)}"
    sep = " " if left > 0 else ""
    return f"roll back by {at_text(by, now)} {unless}{sep}{when}"


def pending_text(trigger: TriggerReport) -> str:
    """A trigger whose condition holds but not yet for its `for`: `pending 2h 10m of 6h`."""
    if trigger.pending_s is None:
        return ""
    return f"pending {humanize(trigger.pending_s)} of {humanize(trigger.for_s)}"


def trigger_notices(report: CheckReport | None, now: datetime) -> list[str]:
    """The banner area's lines below the critical alarm: triggers waiting on `for`, fired
    high ones with their deadline, fired medium ones holding the stage. Critical fired or
    raised triggers are the alarm itself (the banner's first lines)."""
    if report is None:
        return []
    lines = []
    for t in report.triggers:
        reason = t.judgement.reason
        if t.fired is True and t.severity == "high":
            deadline = deadline_text(t, now) or "respond now: roll back, or clear it"
            lines.append(f"‼ HIGH {t.id} FIRED: {reason} — {deadline}")
        elif t.fired is True and t.severity == "medium":
            lines.append(f"⚠ MEDIUM {t.id} FIRED: {reason} — holds the stage (extend monitoring)")
        elif t.pending_s is not None:
            lines.append(f"{WAITING_MARK} {t.id} ({t.severity}) {pending_text(t)}: {reason}")
        elif t.suspect:
            lines.append(
                f"◑ SUSPECT {t.id} ({t.severity}): {t.decided_by()}; holds advance, never rolls "
                f"back: {reason}"
            )
    return lines


def manual_line(
    trigger: TriggerReport | None, severity: str, now: datetime, *, keys: bool = True
) -> str:
    """A manual trigger in the runbook pane: raised (by whom, when, the note, a deadline),
    or not; with the key that changes it (`keys`, not on a read-only console)."""
    if trigger is None or trigger.raised is None:
        return f"not raised ({severity})" + (" · t raises it" if keys else "")
    up = trigger.raised
    deadline = deadline_text(trigger, now)
    text = f"RAISED ({severity}) by {up.actor} {at_text(up.at, now)}: {up.note}"
    return text + (f" — {deadline}" if deadline else "") + (" · t clears it" if keys else "")


def completed_text(done: Completed, now: datetime) -> str:
    return f"CUTOVER COMPLETE ({done.actor}, {at_text(done.at, now)})"


def names(items: Sequence[str]) -> str:
    return ", ".join(items)
