"""What earlier visits left in the journal, for the runbook pane and the header: who signed
each step of a stage the last time the cutover passed through it, and how many times each
stage has been entered. Pure: a fold over journal events that follows state.replay's moves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cutover.model import Runbook
from cutover.state import MOVES, SignOff


@dataclass(frozen=True)
class History:
    entries: dict[str, int] = field(default_factory=dict)  # stage id -> times entered
    # stage id -> step id -> its sign-off in the latest visit of that stage
    signoffs: dict[str, dict[str, SignOff]] = field(default_factory=dict)

    def times_in(self, stage_id: str) -> int:
        return self.entries.get(stage_id, 1)


def history(runbook: Runbook, events: Iterable) -> History:
    """Every stage entry and sign-off, visit by visit.

    Visits are numbered as state.replay numbers them (every entry into any stage counts), so
    a sign-off event's (stage, visit) says which entry it belongs to."""
    known = {s.id for s in runbook.stages}
    visit, stage_of_visit = 1, {1: runbook.stages[0].id}
    pending: tuple[str, str] | None = None  # (action id, to stage)
    signed: dict[tuple[str, int], dict[str, SignOff]] = {}
    for event in events:
        kind = event.kind
        if kind == "signoff":
            key = (event.get("stage"), event.get("visit"))
            step = event.get("step")
            if stage_of_visit.get(key[1]) == key[0]:
                signed.setdefault(key, {})[step] = SignOff(
                    stage=key[0],
                    step=step,
                    visit=key[1],
                    actor=event.actor,
                    at=event.ts,
                    note=event.get("note") or "",
                    override=bool(event.get("override")),
                )
            continue
        move, _, phase = kind.partition(".")
        if move not in MOVES:
            continue
        if phase == "intent":
            pending = (event.get("action"), event.get("to_stage"))
        elif phase in ("done", "failed") and pending and pending[0] == event.get("action"):
            to_stage, pending = pending[1], None
            if phase == "done" and to_stage in known:
                visit += 1
                stage_of_visit[visit] = to_stage
    entries: dict[str, int] = {}
    latest: dict[str, int] = {}
    for number, stage_id in stage_of_visit.items():
        entries[stage_id] = entries.get(stage_id, 0) + 1
        latest[stage_id] = number
    return History(
        entries, {stage_id: signed.get((stage_id, n), {}) for stage_id, n in latest.items()}
    )
