"""`cutover status`: where the cutover stands, from the journal, the flag and the traffic."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime

from cutover.base.finite import json_safe
from cutover.base.inert import inert
from cutover.cli.common import ERROR, OK, out, session_for, warn
from cutover.cli.moves import reconcile_on_start
from cutover.judge.session import Session
from cutover.record.journal import iso_utc
from cutover.runbook.durations import humanize
from cutover.sources import db
from cutover.sources.observe import Observed, observed_share
from cutover.traffic import machine
from cutover.traffic.deployments import pinned_note
from cutover.traffic.flags import FlagError, FlagState, open_flag_or_none


async def _look(
    session: Session,
) -> tuple[FlagState | None, str | None, Observed | None, str | None]:
    """The flag read back and the observed share, each with the reason it is missing."""
    flag, flag_problem = open_flag_or_none(session)
    read = None
    if flag is not None:
        try:
            await reconcile_on_start(session, flag)
            read = await flag.read()
        except FlagError as exc:
            flag_problem = str(exc)
        finally:
            await flag.aclose()
    seen, db_problem = None, None
    if session.runbook.flag.observed is not None:
        try:
            runner = session.runner(1)  # the observed share only
            try:
                await runner.connect()
                seen = await observed_share(session.runbook, runner, environ=session.environ)
            finally:
                await runner.aclose()
        except db.DatabaseUnavailable as exc:
            db_problem = str(exc)
    return read, flag_problem, seen, db_problem


def cmd_status(args: argparse.Namespace) -> int:
    session = session_for(args)
    read, flag_problem, seen, db_problem = asyncio.run(_look(session))
    current, warnings = session.state()
    warn(warnings)
    stage = session.runbook.stage(current.stage_id)
    now = datetime.now(UTC)
    # A move in flight (journaled by any process, or holding the move lock) changes the
    # flag on purpose: what it reads meanwhile is not drift (#21.1, as the console says).
    holder = session.store.move_holder()  # asked once: on Postgres it is a round trip
    moving = current.pending is not None or holder is not None
    drift = None if moving else machine.drift(read, stage)
    pending = None
    if current.pending:
        p = current.pending
        pending = {
            "action": p.action,
            "move": p.move,
            "by": p.actor,
            "since": iso_utc(p.at),
            "from_percent": p.from_percent,
            "to_percent": p.to_percent,
            # the deployment it still waits on, when the last look found one building
            "waiting_on": current.unsettled.get(p.action),
        }
    runs = session.read_evidence(current.entered_at).runs
    latest = _latest(runs)
    medium = [
        t.id
        for t in session.runbook.triggers
        if t.severity == "medium" and _trigger_state(t, latest, current, now)["fired"]
    ]
    hold = session.judge_hold(current, now, runs=runs)
    if medium:
        hold = replace(hold, held_by=tuple(medium))
    status = {
        "stage": stage.id,
        "title": stage.title,
        "visit": current.visit,
        "times_in_stage": current.entries.get(stage.id, 1),
        "percent": {
            "stage": stage.percent,
            "set": current.percent,
            "read": read.percent if read else None,
            "live": read.in_effect if read else None,
            "observed": seen.percent if seen else None,
        },
        "flag": {"detail": read.detail if read else None, "problem": flag_problem},
        "observed": {"detail": seen.detail if seen else None, "problem": db_problem},
        "drift": drift,
        "hold": {
            "required_s": stage.hold_s,
            "held_s": round(hold.held_s),
            "elapsed_s": round(current.hold_elapsed_s(now)),
            "met": hold.met,
            "since": iso_utc(hold.since) if hold.since else None,
            "entered_at": iso_utc(current.entered_at) if current.entered_at else None,
            "restarted_at": iso_utc(hold.restarted_at) if hold.restarted_at else None,
            "restart_reason": hold.restart_reason,
            "held_by": list(hold.held_by),
            "text": hold.describe(),
            "accepted_gaps": [
                {"from": iso_utc(g.start), "to": iso_utc(g.end), "by": g.actor, "note": g.note}
                for g in current.accepted_gaps
            ],
        },
        "triggers": [
            {"id": t.id, "severity": t.severity, **_trigger_state(t, latest, current, now)}
            for t in session.runbook.triggers
        ],
        "completed": iso_utc(current.completed.at) if current.completed else None,
        "overrides": [
            {
                "stage": o.stage,
                "gate": o.gate,
                "reason": o.reason,
                "by": o.actor,
                "at": iso_utc(o.at),
                "note": o.note,
            }
            for o in current.overrides
        ],
        "signoffs": [_signoff(step, current) for step in stage.steps],
        "rollback_checklist": _checklist(session, current, latest),
        "pending": pending,
        "pinned": _pinned(current, read),
        "journal": {"events": current.last_seq, "warnings": list(warnings)},
        # Who is moving traffic now (the move lock's holder), from any host in team mode.
        "move_lock": holder,
    }
    if args.json:
        out(json.dumps(json_safe(status), ensure_ascii=False))
    else:
        _print(session, status)
    # A dead platform or database shows in the exit code too.
    return ERROR if flag_problem or db_problem else OK


def _pinned(current, read: FlagState | None) -> dict | None:
    """Production pinned to an earlier deployment (an instant rollback): by the journal,
    else by what the platform shows."""
    if current.pinned is not None:
        p = current.pinned
        return {
            "deployment": p.deployment,
            "at": iso_utc(p.at),
            "by": p.actor,
            "note": pinned_note(p.deployment, p.at),
        }
    if read is not None and read.pinned:
        return {
            "deployment": read.pinned,
            "at": None,
            "by": None,
            "note": f"the platform shows production pinned to {read.pinned} (not by this "
            "journal's rollbacks); new builds do not go live until one is promoted",
        }
    return None


def _ordinal(n: int) -> str:
    """
    >>> [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd']
    """
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _latest(runs) -> dict:
    """The latest evidence of each gate and trigger: what was last said, and when."""
    latest: dict = {}
    for run in runs:
        key = (run.what, run.name)
        if key not in latest or run.last >= latest[key].last:
            latest[key] = run
    return latest


def _trigger_state(trigger, latest: dict, current, now: datetime) -> dict:
    """A trigger as the evidence last saw it (status runs no query): fired, pending on
    `for`, raised by a person, or unknown when nothing has evaluated it lately."""
    up = current.raised.get(trigger.id)
    if up is not None:
        return {
            "fired": True,
            "state": "raised",
            "by": up.actor,
            "at": iso_utc(up.at),
            "note": up.note,
        }
    if trigger.check is None:
        return {"fired": False, "state": "not raised"}
    if not trigger.live_in(current.stage_id):
        return {"fired": False, "state": "off", "reason": f"not live in {current.stage_id}"}
    run = latest.get(("trigger", trigger.id))
    if run is None:
        return {"fired": None, "state": "unknown", "reason": "no evaluation recorded"}
    age = (now - run.last).total_seconds()
    stale = age > 2 * 3600  # evidence this old speaks for nothing now
    if run.verdict == "fired" and not stale:
        held = (now - run.first).total_seconds()
        if trigger.for_s and held < trigger.for_s:
            return {
                "fired": False,
                "state": "pending",
                "pending_s": round(held),
                "for_s": trigger.for_s,
                "reason": run.reason,
            }
        fired = {"fired": True, "state": "fired", "since": iso_utc(run.first), "reason": run.reason}
        up = trigger.escalate
        if up is not None and held >= up.after_s:  # held long enough: more urgent now
            fired |= {"severity": up.severity, "escalated_from": trigger.severity}
        return fired
    if run.verdict == "unknown" or stale:
        return {
            "fired": None,
            "state": "unknown",
            "last": run.verdict,
            "at": iso_utc(run.last),
            "reason": run.reason,
        }
    return {"fired": False, "state": "quiet", "at": iso_utc(run.last), "reason": run.reason}


def _checklist(session: Session, current, latest: dict) -> dict | None:
    """The runbook's `[rollback]` checklist while it is open (from a rollback until the next
    advance): each step signed or not, each gate as the evidence last saw it."""
    checklist, after = session.runbook.rollback, current.after_rollback
    if checklist is None or after is None:
        return None
    gates = []
    for gate in checklist.gates:
        run = latest.get(("gate", gate.id))
        gates.append(
            {
                "id": gate.id,
                "title": gate.title,
                "verdict": run.verdict if run else None,
                "at": iso_utc(run.last) if run else None,
                "reason": run.reason if run else "not checked since the rollback",
            }
        )
    return {
        "title": checklist.title,
        "since": iso_utc(after.at),
        "from_stage": after.from_stage,
        "steps": [_signoff(step, after) for step in checklist.steps],
        "gates": gates,
    }


def _signoff(step, current) -> dict:
    signed = current.signoffs.get(step.id)
    return {
        "step": step.id,
        "text": step.text,
        "signed": signed is not None,
        "by": signed.actor if signed else None,
        "at": iso_utc(signed.at) if signed else None,
        "note": signed.note if signed else None,
        "override": signed.override if signed else None,
    }


def _print(session: Session, status: dict) -> None:
    percent, hold = status["percent"], status["hold"]
    out(session.runbook.title)
    times = status["times_in_stage"]
    again = f" ({_ordinal(times)} time in this stage)" if times > 1 else ""
    out(f"stage     {status['stage']} ({inert(status['title'])}){again}")
    read = "unknown" if percent["read"] is None else f"{percent['read']} %"
    live = "" if percent["live"] in (None, True) else " (not live yet: needs a redeploy)"
    out(f"percent   stage {percent['stage']} % · journal {percent['set']} % · flag {read}{live}")
    if status["flag"]["problem"]:
        out(f"          ✗ flag: {status['flag']['problem']}")
    elif status["flag"]["detail"]:
        out(f"          {status['flag']['detail']}")
    if session.runbook.flag.observed is not None:
        shown = status["observed"]["detail"] or status["observed"]["problem"]
        out(f"observed  {shown}")
    if status["drift"]:
        out(f"DRIFT     ! {status['drift']}")
    if status["pinned"]:
        out(f"PINNED    ! {status['pinned']['note']}")
    if status["move_lock"]:
        out(f"MOVING    {inert(status['move_lock'])}")
    out(f"hold      {hold['text']} (in the stage {humanize(hold['elapsed_s'])})")
    for gap in hold["accepted_gaps"]:
        out(
            f"          gap {gap['from']} – {gap['to']} accepted by {inert(gap['by'])}: "
            f"{inert(gap['note'])}"
        )
    for o in status["overrides"]:
        out(
            f"OVERRIDE  ⚠ {inert(o['stage'])} advanced past gate {inert(o['gate'])} while it "
            f"waited ({inert(o['reason'])}) — {inert(o['by'])} {o['at']}: {inert(o['note'])}"
        )
    if status["completed"]:
        out(f"COMPLETE  the cutover was completed at {status['completed']}")
    for t in status["triggers"]:
        if t["state"] in ("fired", "raised", "pending", "unknown"):
            mark = {"fired": "!", "raised": "!", "pending": "…", "unknown": "?"}[t["state"]]
            detail = inert(t.get("note") or t.get("reason") or "")  # one line, whatever it holds
            if t["state"] == "pending":
                detail = f"{humanize(t['pending_s'])} of {humanize(t['for_s'])}; {detail}"
            out(f"trigger   {mark} {t['id']} {t['state'].upper()} ({t['severity']}): {detail}")
    for s in status["signoffs"]:
        mark = "✓" if s["signed"] else "☐"
        who = ""
        if s["signed"]:
            # An override signed past a failing probe: never shown like a plain sign-off.
            if s["override"]:
                mark = "⚠ OVERRIDE"
            note = f": {inert(s['note'])}" if s["note"] else ""
            who = f"  — {inert(s['by'])} {s['at']}{note}"
        out(f"  {mark} {s['step']}: {inert(s['text'])}{who}")
    checklist = status["rollback_checklist"]
    if checklist:
        out(
            f"ROLLBACK  {inert(checklist['title'])} (rolled back from {checklist['from_stage']} "
            f"at {checklist['since']}; the next advance needs all of it)"
        )
        for s in checklist["steps"]:
            mark = "✓" if s["signed"] else "☐"
            note = f": {inert(s['note'])}" if s["signed"] and s["note"] else ""
            who = f"  — {inert(s['by'])} {s['at']}{note}" if s["signed"] else ""
            out(f"  {mark} {s['step']}: {inert(s['text'])}{who}")
        for g in checklist["gates"]:
            mark = {"pass": "✓", "fail": "✗", "wait": "…", None: "?"}.get(g["verdict"], "?")
            out(f"  {mark} gate {g['id']}: {inert(g['reason'])}")
    if status["pending"]:
        p = status["pending"]
        start = "?" if p["from_percent"] is None else f"{p['from_percent']} %"
        line = (
            f"pending   {p['move']} by {p['by']} since {p['since']} "
            f"({start} → {p['to_percent']} %), no outcome yet"
        )
        if p["waiting_on"]:
            line += f"; waiting on deployment {p['waiting_on']}"
        out(line)
