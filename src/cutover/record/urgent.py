"""How long the record may keep a rollback waiting: a store that does not answer gets a few
seconds once, and every other call of the same rollback, on any connection, fails at once,
so the rollback's records are spilled and the flag is changed without waiting again."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# A store that answers at all answers in milliseconds; a rollback must not wait the ordinary
# call timeout (seconds per connection) for one that has gone silent.
URGENT_S = 2.0
# Within this of a store not answering one call of the rollback, another (a different
# connection, the outcome after a quick flag change) is not asked; later ones are (a
# rollback that waited for a build may find the store back).
SILENT_FOR_S = 10.0


@dataclass
class Urgency:
    seconds: float
    silent_why: str | None = None
    silent_at: float = 0.0

    def silent(self) -> str | None:
        """Why the store is not asked now (it did not answer moments ago), or None."""
        if self.silent_why is None or time.monotonic() - self.silent_at > SILENT_FOR_S:
            return None
        return self.silent_why

    def found_silent(self, why: str) -> None:
        self.silent_why, self.silent_at = why, time.monotonic()


_now: contextvars.ContextVar[Urgency | None] = contextvars.ContextVar("urgency", default=None)


@contextmanager
def rollback(seconds: float = URGENT_S) -> Iterator[Urgency]:
    """Within this (a rollback's task, and the tasks and threads it starts), the store's calls
    wait `seconds` at most, and none after one went unanswered. Inside another (the rollback
    command around the rollback itself), the one already begun: what it found holds."""
    if (begun := _now.get()) is not None:
        yield begun
        return
    urgency = Urgency(seconds)
    token = _now.set(urgency)
    try:
        yield urgency
    finally:
        _now.reset(token)


def current() -> Urgency | None:
    return _now.get()
