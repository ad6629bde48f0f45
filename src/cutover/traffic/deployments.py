"""What each deployment carries, as the journal records it: the record that makes a
deployment *known to carry* a percent, which an instant rollback may go back to.

A platform that builds the flag into deployments (Vercel) reports which deployment serves
production and, when it can tell, what it carries (the journal said so, or it was built
after the variable last changed). A move records each such deployment the first time it
sees it serving: the one live before the first advance with the value read then, each
build a move made once it serves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from cutover.judge.session import Session
from cutover.record.events import Kind
from cutover.traffic.flags import FlagState

Write = Callable[[Kind, dict], object]


def fact(session: Session, read: FlagState | None, *, seen: str = "read") -> dict | None:
    """The record of what the deployment serving production carries, or None when the
    journal already knows it carries that and has seen it serve (or nothing is known)."""
    serving = read.serving if read is not None else None
    if serving is None or serving.carries is None:
        return None
    try:
        known = session.state()[0].deployments.get(serving.id)
    except OSError:
        known = None
    if known is not None and known.percent == serving.carries and known.served_at is not None:
        return None
    fields: dict = {
        "deployment": serving.id,
        "percent": serving.carries,
        "served_at": datetime.now(UTC),
        "seen": seen,
    }
    if serving.created_at is not None:
        fields["created_at"] = serving.created_at
    if serving.ready_at is not None:
        fields["ready_at"] = serving.ready_at
    if serving.commit:
        fields["commit"] = serving.commit
        fields["commit_message"] = serving.commit_message[:200]
    return fields


def record(session: Session, read: FlagState | None, write: Write, *, seen: str = "read") -> None:
    """Journal it as a `deployment` event of its own (a reading outside a move's events)."""
    found = fact(session, read, seen=seen)
    if found is not None:
        write(Kind.DEPLOYMENT, found)


def pinned_note(deployment: str, at: datetime | None) -> str:
    """What an operator needs to know once an instant rollback pinned production.

    >>> pinned_note("dpl_a", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)).split("; ")
    ['production pinned to dpl_a by the rollback at 2025-03-01 09:30:00Z', 'pushes to main \
will not go live until an advance promotes']
    """
    when = f" at {at:%Y-%m-%d %H:%M:%S}Z" if at is not None else ""
    return (
        f"production pinned to {deployment} by the rollback{when}; pushes to main will not "
        "go live until an advance promotes"
    )
