"""The headless commands about time: `raise` and `clear` a manual trigger, `accept-gap`,
and `evidence` (the recorded evaluations)."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta

from cutover.cli.common import FAIL, OK, UsageError, out, session_for, warn
from cutover.judge.digest import digest, person
from cutover.record.events import Kind
from cutover.record.evidence import SKEW
from cutover.record.journal import iso_utc
from cutover.runbook.durations import humanize, parse_duration


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """A time (ISO 8601, UTC when no zone) or a duration ago (`1h`, `7d`).

    >>> now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    >>> parse_since("90m", now).isoformat()
    '2026-11-26T10:30:00+00:00'
    >>> parse_since("2026-11-26T08:00", now).isoformat()
    '2026-11-26T08:00:00+00:00'
    """
    if not text:
        return None
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhd]\s*", text):
        return now - timedelta(seconds=parse_duration(text))
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a time (2026-11-26T08:00Z) nor a duration ago (1h)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _trigger(session, trigger_id: str):
    triggers = {t.id: t for t in session.runbook.triggers}
    if trigger_id not in triggers:
        known = ", ".join(triggers) or "none"
        raise UsageError(f"no trigger {trigger_id!r} in the runbook; triggers: {known}")
    return triggers[trigger_id]


def cmd_raise(args: argparse.Namespace) -> int:
    """A person saw what no query sees (user complaints, an OOM, corrupted data): the
    trigger is fired from now until cleared, exactly like a fired query trigger."""
    if not args.note.strip():
        raise UsageError("raise needs --note: what was seen, and where")
    session = session_for(args)
    trigger = _trigger(session, args.trigger)
    if trigger.kind != "manual":
        raise UsageError(
            f"{trigger.id} is judged by its query; only a manual trigger is raised by hand"
        )
    current, warnings = session.state()
    warn(warnings)
    if trigger.id in current.raised:
        up = current.raised[trigger.id]
        out(f"{trigger.id} is already raised by {up.actor} at {iso_utc(up.at)}: {up.note}")
        return OK
    event = session.journal.append(
        Kind.TRIGGER_RAISED, trigger=trigger.id, severity=trigger.severity, note=args.note
    )
    what = {"critical": "roll back now", "high": "respond", "medium": "the hold waits"}
    deadline = ""
    if trigger.respond_within_s:
        by = event.ts + timedelta(seconds=trigger.respond_within_s)
        left = humanize(trigger.respond_within_s)
        deadline = f"; roll back by {by:%H:%M:%SZ} ({left} left) unless cleared with a note"
    out(
        f"! {trigger.id} RAISED ({trigger.severity}: {what[trigger.severity]}{deadline}) by "
        f"{event.actor} (journal seq {event.seq})"
    )
    return OK


def cmd_clear(args: argparse.Namespace) -> int:
    if not args.note.strip():
        raise UsageError("clear needs --note: why it is over")
    session = session_for(args)
    trigger = _trigger(session, args.trigger)
    current, warnings = session.state()
    warn(warnings)
    if trigger.kind != "manual":
        # A query trigger clears when fresh data says so; what a note can do is answer a
        # fired high trigger before its deadline ("roll back by 03:14 unless cleared").
        if trigger.severity != "high" or not trigger.respond_within_s:
            raise UsageError(
                f"{trigger.id} is judged by its query: it clears when fresh data says so; a "
                "note answers only a high trigger's deadline"
            )
        event = session.journal.append(
            Kind.TRIGGER_CLEARED, trigger=trigger.id, note=args.note, acknowledged=True
        )
        out(
            f"✓ {trigger.id}'s deadline answered by {event.actor} (journal seq {event.seq}); "
            "it still holds advance while its query says it fires"
        )
        return OK
    if trigger.id not in current.raised:
        out(f"{trigger.id} is not raised; nothing to clear")
        return FAIL
    event = session.journal.append(Kind.TRIGGER_CLEARED, trigger=trigger.id, note=args.note)
    out(f"✓ {trigger.id} cleared by {event.actor} (journal seq {event.seq})")
    return OK


def cmd_accept_gap(args: argparse.Namespace) -> int:
    """Accept the latest gap in the evidence of the current stage, with a note: it stops
    restarting the hold, and is shown everywhere afterwards."""
    if not args.note.strip():
        raise UsageError("accept-gap needs --note: why nobody watched, and why that is fine")
    session = session_for(args)
    current, warnings = session.state()
    warn(warnings)
    now = datetime.now(UTC)
    hold = session.judge_hold(current, now)
    if hold.gap is None:
        out(f"no gap to accept: {hold.describe()}")
        return FAIL
    start, end = hold.gap
    if end > now + SKEW:  # only silence that has happened can be forgiven
        out(f"refused: that gap ends at {iso_utc(end)}, after now; only a past gap is accepted")
        return FAIL
    event = session.journal.append(
        Kind.GAP_ACCEPTED,
        stage=current.stage_id,
        gap_start=iso_utc(start),
        gap_end=iso_utc(end),
        note=args.note,
    )
    out(
        f"✓ gap {start:%Y-%m-%d %H:%MZ} – {end:%H:%MZ} ({humanize((end - start).total_seconds())}) "
        f"accepted by {event.actor} (journal seq {event.seq})"
    )
    after = session.judge_hold(session.state()[0], datetime.now(UTC))
    out(f"hold: {after.describe()}")
    return OK


def cmd_evidence(args: argparse.Namespace) -> int:
    session = session_for(args)
    now = datetime.now(UTC)
    since = parse_since(args.since, now)
    read = session.read_evidence(since)
    warn(read.warnings)
    runs = [r for r in read.runs if args.gate in (None, r.name)]
    if args.json:
        for run in runs:
            out(json.dumps(run.to_json(), ensure_ascii=False))
        return OK
    if not runs:
        out("no evidence recorded" + (f" since {iso_utc(since)}" if since else ""))
        return OK
    width = max(len(r.name) for r in runs)
    last_seen: dict[tuple[str, str], datetime] = {}
    for run in runs:
        key = (run.what, run.name)
        before = last_seen.get(key)
        if before is not None and (run.first - before).total_seconds() > 60:
            gap = humanize((run.first - before).total_seconds())
            out(f"{'':>39}  {run.name:<{width}}  gap {gap} (no evaluation)")
        last_seen[key] = max(run.last, before or run.last)
        span = f"{run.first:%Y-%m-%d %H:%M:%S}Z – {run.last:%H:%M:%S}Z"
        out(
            f"{span}  {run.name:<{width}}  {run.verdict.upper():<7} ×{run.count:<5} "
            f"{run.stage}  {run.reason}  ({run.by})"
        )
    return OK


def cmd_digest(args: argparse.Namespace) -> int:
    """What changed since this operator last looked (or `--since`), then remember now."""
    session = session_for(args)
    now = datetime.now(UTC)
    me = person(session.journal.actor)
    since = parse_since(args.since, now) or session.store.last_seen(me)
    first_time = since is None
    since = since or now - timedelta(days=1)
    current, warnings = session.state()
    warn(warnings)
    stage = session.runbook.stage(current.stage_id)
    runs = session.read_evidence(since - timedelta(days=1)).runs
    hold = session.judge_hold(current, now)
    events = session.journal.read().events
    sections = digest(
        session.runbook,
        events=events,
        runs=runs,
        stage=stage,
        hold=hold,
        since=since,
        now=now,
        me=me,
        mine=args.since is not None,
    )
    ago = humanize((now - since).total_seconds())
    why = " (your first look: the last day)" if first_time and not args.since else ""
    out(f"since {iso_utc(since)}, {ago} ago{why}:")
    quiet = True
    for section in sections:
        out(f"{section.title}:")
        for line in section.lines:
            out(f"  {line}")
        quiet = quiet and section.title == "hold"
    if quiet:
        out("nothing else changed")
    if not args.since:
        session.store.mark_seen(me, now)
    return OK
