"""What earlier visits left in the journal, for the runbook pane and the header: who signed
each step of a stage the last time the cutover passed through it, and how many times each
stage has been entered. Pure: a fold over journal events that follows state.replay's moves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cutover.record.state import MOVES, SignOff
from cutover.runbook.model import Runbook


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
    return Folded(runbook).update(list(events))


class Folded:
    """`history` kept current: each update folds only the events after the ones it has seen
    (the console asks on every journal change; a long cutover's journal holds thousands)."""

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook
        self._known = {s.id for s in runbook.stages}
        self._start()

    def _start(self) -> None:
        self._seen = 0
        self._last: object = None
        self._visit = 1
        self._stage_of_visit = {1: self.runbook.stages[0].id}
        self._entries = {self.runbook.stages[0].id: 1}
        self._latest = {self.runbook.stages[0].id: 1}
        self._pending: tuple[str, str] | None = None  # (action id, to stage)
        self._signed: dict[tuple[str, int], dict[str, SignOff]] = {}

    def update(self, events: Sequence) -> History:
        """The history of `events`, which extend the ones of the last update (or start over:
        a journal replaced or rewritten folds from its first event)."""
        seen = self._seen
        if not (seen and len(events) >= seen and events[seen - 1] is self._last):
            self._start()
            seen = 0
        for event in events[seen:]:
            self._fold(event)
        self._seen = len(events)
        self._last = events[-1] if events else None
        return History(
            dict(self._entries),
            {stage_id: self._signed.get((stage_id, n), {}) for stage_id, n in self._latest.items()},
        )

    def _fold(self, event) -> None:
        kind = event.kind
        if kind == "signoff":
            key = (event.get("stage"), event.get("visit"))
            step = event.get("step")
            if self._stage_of_visit.get(key[1]) == key[0]:
                self._signed.setdefault(key, {})[step] = SignOff(
                    stage=key[0],
                    step=step,
                    visit=key[1],
                    actor=event.actor,
                    at=event.ts,
                    note=event.get("note") or "",
                    override=bool(event.get("override")),
                )
            return
        move, _, phase = kind.partition(".")
        if move not in MOVES:
            return
        if phase == "intent":
            self._pending = (event.get("action"), event.get("to_stage"))
        elif (
            phase in ("done", "failed")
            and self._pending
            and self._pending[0] == event.get("action")
        ):
            to_stage, self._pending = self._pending[1], None
            if phase == "done" and to_stage in self._known:
                self._visit += 1
                self._stage_of_visit[self._visit] = to_stage
                self._entries[to_stage] = self._entries.get(to_stage, 0) + 1
                self._latest[to_stage] = self._visit
