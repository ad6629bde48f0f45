"""The flag interface: read the rollout percent where it lives, set it, and read it back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cutover.base.errors import CutoverError
from cutover.record.state import KnownDeployment

Progress = Callable[[str], None]
# What the journal knows each deployment carries (record/state.py), asked afresh each time:
# another process may have journaled a deployment since.
Known = Callable[[], Mapping[str, KnownDeployment]]


def _nothing_known() -> Mapping[str, KnownDeployment]:
    return {}


@dataclass(frozen=True)
class Deployment:
    """A deployment as the platform describes it, and the percent it carries when known (by
    the journal, or because it was built after the variable last changed)."""

    id: str
    carries: int | None
    created_at: datetime | None = None
    ready_at: datetime | None = None
    commit: str | None = None
    commit_message: str = ""

    @property
    def short(self) -> str:
        """The commit as people quote it: 7 characters and the message's first line.

        >>> Deployment("d", 0, commit="c2f1e0a9b8", commit_message="fix footer\\nmore").short
        "c2f1e0a 'fix footer'"
        """
        if not self.commit:
            return "(no git metadata)"
        first = (self.commit_message or "").splitlines()[0][:60] if self.commit_message else ""
        return f"{self.commit[:7]} {first!r}" if first else self.commit[:7]


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
    # The deployment production serves (where deployments carry the flag), with what it
    # carries when known: what the journal records as known to carry a percent.
    serving: Deployment | None = None
    # Production serves an earlier deployment than the newest READY build: an instant
    # rollback pinned it, and new builds do not go live until one is promoted.
    pinned: str | None = None
    # How the change that returned this reading reached traffic, in the operator's words
    # ("instant rollback to dpl_… (built …, carries 0 %)", "build dpl_… READY"), and when
    # (time.monotonic()); empty for a plain read.
    how: str = ""
    live_at: float | None = None
    promoted: str | None = None  # the build this change promoted (production was pinned)
    fallback: str = ""  # why an instant rollback was not taken, when it was not

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

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        said: str = "",
        permanent: bool = False,
        status: int | None = None,
        built: str | None = None,
    ):
        super().__init__(message + (f"; {said}" if said else ""))
        self.retryable = retryable
        self.journaled = message
        # The platform refused who is asking or what is named (401, 403, 404): sending the
        # same request again changes nothing until someone fixes what the message says.
        self.permanent = permanent
        self.status = status  # the platform's HTTP status, when it answered
        self.built = built  # a deployment this attempt created, which failed or is not READY


class NoInstant(CutoverError):
    """An instant rollback cannot be taken (no deployment qualifies, the platform refused,
    it would revert commits nobody accepted): the rollback builds instead, saying why.
    `lasting`: asking again will not change the answer (the plan refuses, a refusal)."""

    def __init__(self, why: str, *, lasting: bool = True, plan: RollbackPlan | None = None):
        super().__init__(why)
        self.why = why
        self.lasting = lasting
        self.plan = plan  # what was weighed, when a plan was made (its build time, say)


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback to `percent` would do: re-point traffic at a deployment known to carry
    it (instant), or set the flag and build (redeploy), and what that costs."""

    percent: int
    instant: bool
    why: str = ""  # why not instant, when not
    target: Deployment | None = None  # the deployment an instant rollback goes back to
    # The commits deployed since the target that an instant rollback also takes back,
    # newest first, as people quote them ("c2f1e0a 'fix footer'").
    reverts: tuple[str, ...] = ()
    build_s: float | None = None  # how long the last production build took

    def says(self) -> str:
        """One paragraph for the confirm dialog and the CLI."""
        if self.instant and self.target is not None:
            text = f"instant rollback to {describe(self.target)}: live in seconds, no build"
            if self.reverts:
                n = len(self.reverts)
                text += (
                    f"; it also reverts {n} commit{'s' if n != 1 else ''} deployed since: "
                    + ", ".join(self.reverts[:5])
                    + (" …" if n > 5 else "")
                )
            return text
        return f"PATCH + redeploy{self.expected()}: {self.why}" if self.why else "PATCH + redeploy"

    def expected(self) -> str:
        if self.build_s is None:
            return ""
        took = f"{self.build_s:.0f}" if self.build_s >= 10 else f"{self.build_s:.1f}"
        return f" (the last build took {took} s)"


def describe(deployment: Deployment) -> str:
    """A deployment in the words the journal and the screen use.

    >>> from datetime import UTC
    >>> describe(Deployment("dpl_a", 0, created_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC)))
    'dpl_a (built 2025-03-01 09:30Z, carries 0 %)'
    """
    built = f"built {deployment.created_at:%Y-%m-%d %H:%M}Z, " if deployment.created_at else ""
    carries = "?" if deployment.carries is None else deployment.carries
    return f"{deployment.id} ({built}carries {carries} %)"


class Flag(Protocol):
    name: str

    async def read(self) -> FlagState: ...

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState: ...

    async def aclose(self) -> None: ...


class InstantFlag(Flag, Protocol):
    """A flag whose platform can take traffic back without a build (Vercel's Instant
    Rollback, a command kind's `rollback` command). `instant` is False when the runbook
    says rollback = "redeploy"."""

    instant: bool

    async def plan_rollback(self, percent: int) -> RollbackPlan: ...

    async def roll_back(
        self, percent: int, progress: Progress = _quiet, *, revert_ok: bool = False
    ) -> FlagState: ...

    async def store(self, percent: int, progress: Progress = _quiet) -> None: ...

    def token_mark(self) -> str | None: ...


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
