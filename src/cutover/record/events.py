"""Every kind of journal event, named once. Writers and readers use these members, never
string literals, so a typo is an AttributeError at import rather than an event that replay
silently skips."""

from __future__ import annotations

from enum import StrEnum

MOVES = ("advance", "rollback", "stepback")


class Kind(StrEnum):
    SIGNOFF = "signoff"  # stage, step, visit, note, override, probe
    # A move: intent before the flag is touched, then exactly one of done / failed.
    ADVANCE_INTENT = "advance.intent"
    ADVANCE_DONE = "advance.done"
    ADVANCE_FAILED = "advance.failed"
    ROLLBACK_INTENT = "rollback.intent"
    ROLLBACK_DONE = "rollback.done"
    ROLLBACK_FAILED = "rollback.failed"
    STEPBACK_INTENT = "stepback.intent"
    STEPBACK_DONE = "stepback.done"
    STEPBACK_FAILED = "stepback.failed"
    # An interrupted move whose outcome is not final yet (a deployment still building).
    MOVE_UNSETTLED = "move.unsettled"
    # The operator recorded what the flag reads after a drift (`cutover reconcile`).
    RECONCILE = "reconcile"
    # What a deployment carries (a platform that builds the flag into deployments, Vercel):
    # deployment (id), percent (the value it was built with), created_at, ready_at,
    # served_at (when it was seen serving production), commit, commit_message, seen
    # ("built" by a move, or "read": live when the flag was read). Repeated for the same
    # deployment, the later fields win. What makes an instant rollback's target known. A
    # move keeps its trail intent → outcome: what it learned rides inline on those events
    # (`serving`, `served_before`, the same fields); this kind is what a command records
    # seen outside a move's own events (settling an interrupted move, reconcile).
    DEPLOYMENT = "deployment"
    # A manual trigger raised or cleared by a person (`cutover raise|clear ID --note`); a
    # query trigger's fired alarm acknowledged with a note (clear).
    TRIGGER_RAISED = "trigger.raised"
    TRIGGER_CLEARED = "trigger.cleared"
    # A gap in the evidence accepted with a note (`cutover accept-gap`): it no longer
    # restarts the hold.
    GAP_ACCEPTED = "gap.accepted"
    # The last stage's guards passed and the cutover is done (no flag touched).
    COMPLETE = "complete"
    # Written by the next writer after a crash left a partial line at the end of the file.
    TORN = "journal.torn"
    # A broken chain looked at and accepted by a person with a note
    # (`cutover journal --accept-break --note`): it names the break it accepts, and from
    # there the journal is trusted again (the break stays on record, in this event).
    CHAIN_ACCEPTED = "journal.break_accepted"

    @property
    def move(self) -> str | None:
        """'advance' for advance.done; None for a kind that is not a move's."""
        head, _, _ = self.value.partition(".")
        return head if head in MOVES else None

    @property
    def phase(self) -> str | None:
        """'intent', 'done' or 'failed' for a move's kinds."""
        return self.value.partition(".")[2] if self.move else None


def move_kind(move: str, phase: str) -> Kind:
    """The kind of one phase of one move.

    >>> move_kind("rollback", "done")
    <Kind.ROLLBACK_DONE: 'rollback.done'>
    """
    return Kind(f"{move}.{phase}")


def known(kind: str) -> Kind | None:
    """The member for a kind read from the journal; None for one this version doesn't know
    (a newer cutover wrote it), which replay skips and `journal` still shows."""
    try:
        return Kind(kind)
    except ValueError:
        return None


# What an operator reads for a move and for a journaled event; the journal keeps the ids.
MOVE_WORDS = {"advance": "advance", "rollback": "rollback", "stepback": "step back"}
EVENT_WORDS = {
    Kind.SIGNOFF: "signed off",
    Kind.ADVANCE_INTENT: "started an advance to",
    Kind.ADVANCE_DONE: "advanced",
    Kind.ADVANCE_FAILED: "advance failed",
    Kind.ROLLBACK_INTENT: "started a rollback to",
    Kind.ROLLBACK_DONE: "rolled back",
    Kind.ROLLBACK_FAILED: "rollback failed",
    Kind.STEPBACK_INTENT: "started a step back to",
    Kind.STEPBACK_DONE: "stepped back",
    Kind.STEPBACK_FAILED: "step back failed",
    Kind.TRIGGER_RAISED: "raised",
    Kind.TRIGGER_CLEARED: "cleared",
    Kind.GAP_ACCEPTED: "accepted a gap in the evidence",
    Kind.COMPLETE: "completed the cutover",
}


def move_words(move: str) -> str:
    """A move in words.

    >>> move_words("stepback"), move_words("rollback")
    ('step back', 'rollback')
    """
    return MOVE_WORDS.get(move, move)


def event_words(kind: str) -> str:
    """A journaled event in words; a kind this version does not know, as written.

    >>> event_words("stepback.intent"), event_words("newer.kind")
    ('started a step back to', 'newer.kind')
    """
    member = known(kind)
    return EVENT_WORDS.get(member, kind) if member is not None else kind
