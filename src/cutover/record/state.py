"""The cutover's state, derived by replaying the journal: there is no other state file.

Event kinds this module understands (members of `cutover.record.events.Kind`):
  signoff           stage, step, visit, note, override (bool), probe (summary or null);
                    checklist "rollback" for a step of the rollback checklist
  <move>.intent     action (id), from_stage, to_stage, from_percent, to_percent, reason;
                    an advance past WAITing gates: overrides [{gate, reason}], override_note
  <move>.done       action, flag_percent, verified (text), took_s
  <move>.failed     action, error
  deployment        deployment, percent, created_at, ready_at, served_at, commit,
                    commit_message, seen: what one deployment carries (merged by id)
where <move> is advance, rollback or stepback. A move carries the same record inline where
it learned it (`serving` on its intent or outcome, `served_before` on a rollback's outcome;
on a reconcile too); a move's done may say `pinned` (the deployment production is pinned to
after it, or null once it is not). A crashed action is
closed later by the reconciler with a `<move>.done` or `<move>.failed` that carries
`reconciled: true`. The journal's health travels with the state (`chain`): replay folds
events, it does not judge them; the journal verified them as it read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field, replace
from datetime import datetime

from cutover.record.chain import ChainProblem
from cutover.record.events import MOVES, Kind, known
from cutover.runbook.frozen import frozen
from cutover.runbook.model import Runbook

__all__ = [
    "MOVES",
    "AfterRollback",
    "CutoverState",
    "KnownDeployment",
    "Override",
    "Pending",
    "Pinned",
    "SignOff",
    "initial",
    "replay",
]


@frozen
class Raised:
    """A trigger raised by a person (`cutover raise ID --note`), until cleared."""

    actor: str
    at: datetime
    note: str


@frozen
class SignOff:
    stage: str
    step: str
    visit: int
    actor: str
    at: datetime
    note: str = ""
    override: bool = False


@frozen
class Override:
    """A gate an advance went past while it WAITed, with the operator's note: shown in every
    later view, as the journal keeps it."""

    stage: str  # the stage whose gate it was
    gate: str
    reason: str  # why the gate was waiting
    actor: str
    at: datetime
    note: str


@frozen
class AfterRollback:
    """The runbook's `[rollback]` checklist, open from a rollback until the next advance
    (which needs its steps signed and its gates passing)."""

    at: datetime  # when the rollback was done
    from_stage: str  # where it rolled back from
    signoffs: dict[str, SignOff] = field(default_factory=dict)  # rollback step id -> sign-off


@frozen
class Pending:
    """An action whose intent is journaled and whose outcome is not (in flight, or a crash)."""

    action: str
    move: str
    seq: int
    actor: str
    at: datetime
    from_stage: str
    to_stage: str
    from_percent: int | None  # what the flag read before; None: not read before the intent
    to_percent: int
    overrides: tuple[Override, ...] = ()  # count once the move is done


@frozen
class AcceptedGap:
    """A gap in the evidence an operator accepted with a note: it does not restart holds."""

    start: datetime
    end: datetime
    actor: str
    note: str


@frozen
class Completed:
    actor: str
    at: datetime


@frozen
class KnownDeployment:
    """A deployment the journal knows to carry a percent: built by a move, or live when the
    flag was read (the value it was built with is then what the flag read). What an instant
    rollback may go back to, once it has served production."""

    id: str
    percent: int
    created_at: datetime | None = None
    ready_at: datetime | None = None
    served_at: datetime | None = None  # first seen serving production
    commit: str | None = None
    commit_message: str = ""
    seen: str = ""  # "built" or "read"


@frozen
class Pinned:
    """Production pinned to an earlier deployment by an instant rollback: the platform stops
    putting new builds live until one is promoted (the next advance does)."""

    deployment: str
    at: datetime
    actor: str


# The journal keeps every record; the state keeps the newest this many deployments.
KEPT_DEPLOYMENTS = 200


@frozen
class CutoverState:
    stage_id: str
    visit: int  # counts every entry into a stage, so sign-offs of an earlier visit don't carry over
    entered_at: datetime | None  # None: the journal has not started this stage's clock
    percent: int  # what the journal says the flag was last verified at
    signoffs: dict[str, SignOff] = field(default_factory=dict)  # step id -> this visit's sign-off
    pending: Pending | None = None
    last_seq: int = 0
    # action id -> the deployment an interrupted move still waits on ("dpl_… BUILDING")
    unsettled: dict[str, str] = field(default_factory=dict)
    # Where the journal this was replayed from stops being what cutover wrote (None: whole).
    # While it is set, advance, step back and sign-off refuse; rollback never does.
    chain: ChainProblem | None = None
    # trigger id -> who raised it (a manual trigger, or a query trigger acknowledged open)
    raised: dict[str, Raised] = field(default_factory=dict)
    # trigger id -> the note that answered a fired high trigger (its deadline is met)
    acknowledged: dict[str, Raised] = field(default_factory=dict)
    # Gaps in the evidence accepted with a note: (from, to) they no longer restart a hold.
    accepted_gaps: tuple[AcceptedGap, ...] = ()
    completed: Completed | None = None  # the cutover is done
    # stage id -> how many times the journal has entered it (the first stage starts at 1)
    entries: dict[str, int] = field(default_factory=dict)
    # Gates advanced past while they WAITed (`advance --override GATE --note`), oldest first.
    overrides: tuple[Override, ...] = ()
    # The rollback checklist, while open; and when the latest rollback was done (a query's
    # "rolled_back_at"), open or not.
    after_rollback: AfterRollback | None = None
    rolled_back_at: datetime | None = None
    # deployment id -> what it is known to carry (the journal's `deployment` records)
    deployments: dict[str, KnownDeployment] = field(default_factory=dict)
    pinned: Pinned | None = None  # production pinned by an instant rollback, until promoted

    def hold_elapsed_s(self, now: datetime) -> float:
        return 0.0 if self.entered_at is None else max(0.0, (now - self.entered_at).total_seconds())


def initial(runbook: Runbook) -> CutoverState:
    first = runbook.stages[0]
    return CutoverState(
        stage_id=first.id, visit=1, entered_at=None, percent=first.percent, entries={first.id: 1}
    )


def replay(runbook: Runbook, events: Iterable, since: CutoverState | None = None) -> CutoverState:
    """Fold journal events into the current state (onward from `since`, the state replayed
    from the events before these). Unknown stages/kinds are skipped, so an old journal still
    replays after the runbook gained or renamed stages, and a newer one after cutover did."""
    state = since or initial(runbook)
    stages = {s.id for s in runbook.stages}
    last_seq = state.last_seq  # set once at the end: a copy of the state per event is slow
    for event in events:
        if state.entered_at is None:
            # The first stage's clock starts with the first thing anybody journaled.
            state = replace(state, entered_at=event.ts)
        last_seq = event.seq
        kind = known(event.kind)
        if kind is None:
            continue
        if kind is Kind.SIGNOFF and event.get("checklist") == "rollback":
            # A step of the rollback checklist: it belongs to the checklist open now (each
            # rollback opens a fresh one), whatever stage or visit it was signed in.
            if state.after_rollback is not None:
                signed = _signoff(event)
                after = state.after_rollback
                state = replace(
                    state,
                    after_rollback=replace(after, signoffs={**after.signoffs, signed.step: signed}),
                )
            continue
        if kind is Kind.SIGNOFF:
            if event.get("stage") == state.stage_id and event.get("visit") == state.visit:
                signed = SignOff(
                    stage=event.get("stage"),
                    step=event.get("step"),
                    visit=event.get("visit"),
                    actor=event.actor,
                    at=event.ts,
                    note=event.get("note") or "",
                    override=bool(event.get("override")),
                )
                state = replace(state, signoffs={**state.signoffs, signed.step: signed})
            continue
        if kind is Kind.MOVE_UNSETTLED:
            action = event.get("action")
            if state.pending and state.pending.action == action:
                state = replace(
                    state, unsettled={**state.unsettled, action: event.get("pending") or ""}
                )
            continue
        if kind is Kind.DEPLOYMENT:
            state = _learn(state, event.fields)
            continue
        for inline in ("served_before", "serving"):
            if isinstance(event.get(inline), dict):
                state = _learn(state, event.get(inline))
        if kind is Kind.RECONCILE:
            # The operator recorded what the flag reads; the journal's stage moves back to
            # the stage that runs at that percent (never forward: that would skip guards).
            to_stage, percent = event.get("to_stage"), event.get("flag_percent")
            if isinstance(percent, int) and to_stage in stages and state.pending is None:
                if to_stage != state.stage_id:
                    state = _enter(state, to_stage, percent, event.ts)
                else:
                    state = replace(state, percent=percent)
            continue
        if kind is Kind.TRIGGER_RAISED:
            trigger = event.get("trigger")
            if isinstance(trigger, str):
                up = Raised(event.actor, event.ts, event.get("note") or "")
                state = replace(state, raised={**state.raised, trigger: up})
            continue
        if kind is Kind.TRIGGER_CLEARED:
            trigger = event.get("trigger")
            if event.get("acknowledged"):
                # A fired query trigger answered with a note: its deadline is met; it still
                # holds advance while its query says it fires.
                ack = Raised(event.actor, event.ts, event.get("note") or "")
                state = replace(state, acknowledged={**state.acknowledged, trigger: ack})
            else:
                raised = {k: v for k, v in state.raised.items() if k != trigger}
                state = replace(state, raised=raised)
            continue
        if kind is Kind.GAP_ACCEPTED:
            gap = _accepted_gap(event)
            if gap is not None:
                state = replace(state, accepted_gaps=(*state.accepted_gaps, gap))
            continue
        if kind is Kind.COMPLETE:
            if event.get("stage") == state.stage_id and state.pending is None:
                state = replace(
                    state,
                    completed=Completed(event.actor, event.ts),
                    overrides=(*state.overrides, *_overrides(event, state.stage_id)),
                )
            continue
        move, phase = kind.move, kind.phase
        if move is None:
            continue
        if phase == "intent":
            state = replace(
                state,
                pending=Pending(
                    action=event.get("action"),
                    move=move,
                    seq=event.seq,
                    actor=event.actor,
                    at=event.ts,
                    from_stage=event.get("from_stage"),
                    to_stage=event.get("to_stage"),
                    from_percent=event.get("from_percent"),
                    to_percent=event.get("to_percent"),
                    overrides=_overrides(event, event.get("from_stage")),
                ),
            )
        elif (
            phase in ("done", "failed")
            and state.pending
            and state.pending.action == event.get("action")
        ):
            pending = state.pending
            state = replace(state, pending=None, unsettled={})
            if "pinned" in event.fields:
                pin = event.get("pinned")
                pinned = Pinned(str(pin), event.ts, event.actor) if pin else None
                if pinned is None or state.pinned is None or state.pinned.deployment != pin:
                    state = replace(state, pinned=pinned)
            if phase == "done" and pending.overrides:
                state = replace(state, overrides=(*state.overrides, *pending.overrides))
            # A rollback that found nothing to roll back (the flag read 0, the journal said 0,
            # it lands where it is) changes nothing: no checklist opens ("rolled back from
            # prerequisites" once appeared), the stage's sign-offs stay.
            nothing = (
                move == "rollback"
                and bool(event.get("unchanged"))
                and state.percent == 0
                and pending.to_stage == state.stage_id
            )
            if phase == "done" and move == "rollback" and not nothing:
                opened = AfterRollback(event.ts, pending.from_stage)
                state = replace(state, after_rollback=opened, rolled_back_at=event.ts)
            elif phase == "done" and move == "advance":
                state = replace(state, after_rollback=None)  # it needed the checklist done
            if phase == "done" and pending.to_stage in stages and not nothing:
                state = _enter(state, pending.to_stage, pending.to_percent, event.ts)
    return state if state.last_seq == last_seq else replace(state, last_seq=last_seq)


def _learn(state: CutoverState, record: dict) -> CutoverState:
    merged = _deployment(record, state.deployments.get(record.get("deployment")))
    if merged is None:
        return state
    return replace(state, deployments=_kept({**state.deployments, merged.id: merged}))


def _deployment(event: dict, before: KnownDeployment | None) -> KnownDeployment | None:
    """One `deployment` record merged over what was known of it: later fields win, a
    missing one keeps the earlier value (served_at keeps the first time)."""
    uid, percent = event.get("deployment"), event.get("percent")
    if not isinstance(uid, str) or not uid:
        return None
    if not isinstance(percent, int) or isinstance(percent, bool):
        percent = before.percent if before is not None else None
    if percent is None:
        return None
    base = before or KnownDeployment(uid, percent)
    served = base.served_at or _when(event.get("served_at"))
    return KnownDeployment(
        id=uid,
        percent=percent,
        created_at=_when(event.get("created_at")) or base.created_at,
        ready_at=_when(event.get("ready_at")) or base.ready_at,
        served_at=served,
        commit=event.get("commit") or base.commit,
        commit_message=event.get("commit_message") or base.commit_message,
        seen=event.get("seen") or base.seen,
    )


def _when(text) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


def _kept(deployments: dict[str, KnownDeployment]) -> dict[str, KnownDeployment]:
    if len(deployments) <= KEPT_DEPLOYMENTS:
        return deployments
    return dict(list(deployments.items())[-KEPT_DEPLOYMENTS:])


def _signoff(event) -> SignOff:
    return SignOff(
        stage=event.get("stage"),
        step=event.get("step"),
        visit=event.get("visit"),
        actor=event.actor,
        at=event.ts,
        note=event.get("note") or "",
        override=bool(event.get("override")),
    )


def _overrides(event, stage: str) -> tuple[Override, ...]:
    """The gates an advance (or completion) went past, as its event journaled them."""
    listed = event.get("overrides")
    if not isinstance(listed, list):
        return ()
    note = event.get("override_note") or ""
    return tuple(
        Override(
            str(stage), str(o["gate"]), str(o.get("reason") or ""), event.actor, event.ts, note
        )
        for o in listed
        if isinstance(o, dict) and o.get("gate")
    )


def _accepted_gap(event) -> AcceptedGap | None:
    try:
        start = datetime.fromisoformat(event.get("gap_start"))
        end = datetime.fromisoformat(event.get("gap_end"))
    except (TypeError, ValueError):
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    # Nobody can accept silence that has not happened yet: a gap that ends after the moment
    # it was accepted (evidence dated in the future) is forgiven only up to that moment.
    end = min(end, event.ts)
    if end <= start:
        return None
    return AcceptedGap(start, end, event.actor, event.get("note") or "")


def _enter(state: CutoverState, stage_id: str, percent: int, at: datetime) -> CutoverState:
    visit = state.visit + 1
    return replace(
        state,
        stage_id=stage_id,
        visit=visit,
        entered_at=at,
        percent=percent,
        signoffs={},
        completed=None,
        entries={**state.entries, stage_id: state.entries.get(stage_id, 0) + 1},
    )
