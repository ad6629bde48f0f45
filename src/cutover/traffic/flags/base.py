"""The flag interface: read the rollout percent where it lives, set it, and read it back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cutover.base.errors import CutoverError

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


@dataclass(frozen=True)
class FlagState:
    """What the platform reports about the flag, and (where it matters) what is live."""

    percent: int | None  # the value the platform reports (None: unset or unparseable)
    raw: str | None  # the value exactly as stored
    live_percent: int | None = None  # what the live deployment carries, where that applies
    deployment_id: str | None = None
    detail: str = ""  # one line for the header
    # The stored value is known not to be live yet (Vercel: changed after the live
    # deployment). Separate from live_percent, whose None also means "not applicable".
    needs_redeploy: bool = False
    # A deployment that is not final yet (QUEUED, BUILDING…) and may still change what is
    # live: nothing about traffic is settled until it ends.
    pending_deployment: str | None = None
    pending_state: str | None = None
    # What to do when the stored value is not what traffic gets, in this flag kind's own
    # terms (a file to create, a deployment to redeploy); said by reconcile and the drift.
    remedy: str = "roll back (it sets the flag and makes it live), then reconcile"

    @property
    def in_effect(self) -> bool:
        return (
            self.percent is not None
            and not self.needs_redeploy
            and (self.live_percent is None or self.live_percent == self.percent)
        )

    @property
    def settled(self) -> bool:
        """No deployment in flight: what is live now stays live until someone acts."""
        return self.pending_deployment is None

    def summary(self) -> dict:
        """What was read, for the journal: enough to tell later what traffic saw."""
        out = {"percent": self.percent, "live": self.in_effect}
        if self.deployment_id:
            out["deployment"] = self.deployment_id
        if self.pending_deployment:
            out["pending"] = f"{self.pending_deployment} {self.pending_state}"
        return out


class FlagError(CutoverError):
    """A flag operation failed; the message says what, where and what to do. `said` is what
    the failing tool itself printed (a command's stderr, redacted): shown on screen, never
    journaled, since a derived form of a secret (its base64, a part) escapes redaction."""

    def __init__(self, message: str, *, retryable: bool = False, said: str = ""):
        super().__init__(message + (f"; {said}" if said else ""))
        self.retryable = retryable
        self.journaled = message


class Flag(Protocol):
    name: str

    async def read(self) -> FlagState: ...

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState: ...

    async def aclose(self) -> None: ...


def parse_percent(raw: str | None) -> tuple[int | None, str]:
    """The percent the app would use for a stored value, and a note when they differ.

    The app clamps to 0–100, so the percent is clamped too, but the note keeps what is stored.

    >>> parse_percent("50")
    (50, '')
    >>> parse_percent(" 10\\n")
    (10, '')
    >>> parse_percent("150")
    (100, 'stored 150, the app clamps it to 100')
    >>> parse_percent("-3")
    (0, 'stored -3, the app clamps it to 0')
    >>> parse_percent("ten")
    (None, "stored 'ten' is not a whole number")
    >>> parse_percent(None)
    (None, 'not set')
    """
    if raw is None:
        return None, "not set"
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        return None, f"stored {text[:40]!r} is not a whole number"
    clamped = min(100, max(0, value))
    if clamped != value:
        return clamped, f"stored {value}, the app clamps it to {clamped}"
    return value, ""


def check_percent(percent: int) -> None:
    """Refuse to write a percent the app would have to clamp: a typo must not reach production."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise FlagError(f"refusing to set {percent!r}: a percent is a whole number 0–100")
