"""The report's facts as tables of plain text, one set for both formats: HTML and Markdown
say the same words, each escaping them its own way (a note can hold anything)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from cutover.judge.digest import person
from cutover.report.facts import Report, StageFacts
from cutover.report.timeline import interval_text, value_text
from cutover.runbook.durations import humanize


@dataclass(frozen=True)
class Chart:
    """One drawn chart (report.charts draws them; the documents only place them)."""

    name: str  # a file name's stem: "canary-2-gate-success"
    title: str
    svg: str  # the <svg> element alone (no XML prolog): inline in HTML, or a file


@dataclass(frozen=True)
class Table:
    caption: str
    head: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str = "none"  # said instead of an empty table


def at(when: datetime | None) -> str:
    return "—" if when is None else f"{when:%Y-%m-%d %H:%M:%S}Z"


def number(value: float | None) -> str:
    if value is not None and math.isnan(value):
        return "no value (NaN)"  # an UNKNOWN's reading as the evidence holds it; never `nan`
    return "—" if value is None else value_text(value)


def interval(pair: tuple[float, float] | None) -> str:
    return interval_text(pair).replace("–", " – ")


def summary(report: Report) -> Table:
    s = report.summary
    duration = humanize((s.ended - s.started).total_seconds()) if s.started and s.ended else "—"
    rows = [
        ("cutover", s.title),
        ("stages passed", ", ".join(s.stages_passed) or "none yet"),
        ("current stage", s.current),
        ("outcome", s.outcome),
        ("who took part", ", ".join(f"{who} ({n})" for who, n in s.people) or "nobody yet"),
        ("first entry", at(s.started)),
        (
            "completed" if report.summary.outcome.startswith("complete") else "last entry",
            at(s.ended),
        ),
        ("duration", duration),
        ("rollbacks", str(len(s.rollbacks))),
        ("record as of", at(report.as_of)),
    ]
    return Table("Summary", ("", ""), rows)


def rollbacks(report: Report) -> Table:
    rows = [
        (
            at(m.at),
            person(m.actor),
            f"{m.from_stage} → {m.to_stage} ({m.to_percent} %)",
            m.reason,
            m.outcome + (f": {m.error}" if m.error else ""),
            "—" if m.live_s is None else f"{m.live_s:.1f} s",
            m.effect,
        )
        for m in report.summary.rollbacks
    ]
    head = ("started", "by", "to", "reason", "outcome", "time to effect", "effect")
    return Table("Rollbacks", head, rows, "no rollback")


def visit(stage: StageFacts) -> Table:
    v, hold = stage.visit, stage.hold
    how = "first stage" if v.how == "start" else f"{v.how} by {person(v.by)}"
    rows = [
        ("stage", f"{stage.stage.id} ({stage.stage.title}), {v.percent} %"),
        ("entered", f"{at(v.entered_at)} ({how})"),
        ("left", at(v.left_at) if v.left_at else "still here"),
        ("time in stage", humanize((stage.end - v.entered_at).total_seconds())),
        ("hold, by the evidence", hold.describe()),
        ("hold restarts", str(len(stage.restarts))),
        ("gaps in the evidence", str(len(stage.gaps))),
    ]
    return Table("The visit", ("", ""), rows)


# A table longer than this keeps its first and last rows and says how many it left out.
LONGEST = 40


def restarts(stage: StageFacts) -> Table:
    rows = [(at(r.at), r.gate, r.reason) for r in stage.restarts]
    if len(rows) > LONGEST:
        counts: dict[str, int] = {}
        for r in stage.restarts:
            counts[r.gate] = counts.get(r.gate, 0) + 1
        each = ", ".join(f"{gate} {n}" for gate, n in sorted(counts.items()))
        left = len(rows) - LONGEST
        rows = [*rows[: LONGEST // 2], ("…", f"{left} more ({each} in all)", "…"),
                *rows[-LONGEST // 2 :]]  # fmt: skip
    caption = f"Hold restarts ({len(stage.restarts)})" if stage.restarts else "Hold restarts"
    return Table(caption, ("at", "gate", "why"), rows, "the hold never restarted")


def gaps(stage: StageFacts) -> Table:
    rows = [
        (
            at(g.start),
            at(g.end),
            humanize(g.seconds),
            f"accepted by {person(g.accepted_by)}: {g.note}" if g.accepted_by else "not accepted",
        )
        for g in stage.gaps
    ]
    return Table("Gaps in the evidence", ("from", "to", "length", "accepted"), rows, "no gap")


def signoffs(stage: StageFacts) -> Table:
    rows = [
        (
            at(s.at),
            ("rollback checklist: " if s.checklist else "") + s.step,
            person(s.actor),
            "OVERRIDE" if s.override else "",
            s.note,
        )
        for s in stage.signoffs
    ]
    return Table("Sign-offs", ("at", "step", "by", "", "note"), rows, "no sign-off")


def overrides(stage: StageFacts) -> Table:
    rows = [(at(o.at), o.gate, person(o.actor), o.why, o.note) for o in stage.overrides]
    head = ("at", "gate", "by", "why it waited", "note")
    return Table("Gates advanced past (overrides)", head, rows, "no override")


def checkpoints(stage: StageFacts) -> Table:
    rows = [
        (
            c.label,
            at(c.at),
            str(c.queries),
            c.damaged or (", ".join(c.failed) if c.failed else "all answered"),
        )
        for c in stage.checkpoints
    ]
    head = ("snapshot", "taken", "queries", "failed")
    return Table("Snapshots (entry, checkpoints, exit)", head, rows, "no snapshot")


def comparisons(stage: StageFacts) -> Table:
    rows = []
    for g in stage.gates:
        last = g.latest
        rows.append(
            (
                g.gate.id,
                g.words,
                last.verdict.upper() if last else "not evaluated",
                number(last.value) if last else "—",
                interval(last.interval) if last else "—",
                g.baseline or "—",
                last.reason if last else "",
            )
        )
    head = ("gate", "comparison", "last verdict", "value", "interval", "baseline", "reason")
    return Table("Gates and comparisons", head, rows, "no gate in this stage")


def notes(stage: StageFacts) -> Table:
    rows = [(at(n.at), person(n.actor), n.what, n.note) for n in stage.notes]
    return Table("Noted by people", ("at", "by", "what", "note"), rows, "nothing")


def moves(stage: StageFacts) -> Table:
    rows = [
        (
            at(m.at),
            m.move,
            person(m.actor),
            f"{m.from_stage} → {m.to_stage} ({m.to_percent} %)",
            m.outcome + (f": {m.error}" if m.error else ""),
            "—" if m.live_s is None else f"{m.live_s:.1f} s",
            m.reason,
        )
        for m in stage.moves
    ]
    head = ("started", "move", "by", "to", "outcome", "time to effect", "reason")
    return Table("Moves on this chart's axis", head, rows, "no move")


def stage_tables(stage: StageFacts) -> list[Table]:
    return [
        visit(stage),
        comparisons(stage),
        restarts(stage),
        gaps(stage),
        signoffs(stage),
        overrides(stage),
        checkpoints(stage),
        notes(stage),
        moves(stage),
    ]


def chain(report: Report) -> Table:
    c = report.chain
    rows = [
        ("verified", "yes" if c.ok else "NO"),
        ("keyed (HMAC)", "yes" if c.keyed else "no"),
        ("events", str(c.events)),
        ("head", f"seq {c.head_seq} {c.head_hash}" if c.head_hash else "empty journal"),
        ("what verify said", c.message),
    ]
    return Table("The journal", ("", ""), rows)
