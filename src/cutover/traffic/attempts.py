"""Setting the flag until it is verified: how often to try, what to wait for between tries,
and when trying again is pointless.

A rollback first tries the platform's instant way (no build) where the flag has one, and
builds when it cannot, saying why. A build that failed is not built again at once: one new
build per back-off step (30 s, 1 m, 2 m, then every 5 m), so a broken build does not pile
up deployments. A refusal of who is asking (a bad token) is not sent again unchanged: the
rollback waits for the token file to change, or stops and says what to fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cutover.runbook.durations import humanize
from cutover.traffic.flags import Flag, FlagError, FlagState, NoInstant

Progress = Callable[[str], None]

# Between two builds of a rollback that keeps failing; the last step repeats.
BUILD_BACKOFF_S: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0)
TOKEN_POLL_S = 1.0  # how often a waiting rollback looks at the token file
TOKEN_SAY_S = 60.0  # how often it says it is still waiting
HOW = ("auto", "instant", "redeploy")


@dataclass(frozen=True)
class Tried:
    read_back: FlagState | None  # verified, or None
    attempts: int
    error: str  # the last error, for the journal ("" when verified)
    fallback: str = ""  # why an instant rollback was not taken, when it was tried


def why_unverified(state: FlagState, percent: int) -> str | None:
    """Why the read-back does not show the change as done, or None when it does."""
    if state.percent != percent:
        return f"the flag reads {state.percent} %, not {percent} %"
    if not state.in_effect:
        return f"the flag reads {percent} % but it is not live yet ({state.detail})"
    return None


def backoff(step: int, steps: Sequence[float] = BUILD_BACKOFF_S) -> float:
    """The wait before the build after `step` failed ones.

    >>> [backoff(n) for n in range(6)]
    [30.0, 60.0, 120.0, 300.0, 300.0, 300.0]
    """
    return steps[min(step, len(steps) - 1)]


async def attempts(
    flag: Flag,
    percent: int,
    progress: Progress,
    attempts: int | None,
    retry_delay_s: float,
    *,
    move: str = "",
    how: str = "auto",
    build_backoff_s: Sequence[float] = BUILD_BACKOFF_S,
) -> Tried:
    """Set and verify until verified, `attempts` run out, or a refusal nothing here can
    change. Other failures back off from `retry_delay_s` up to 30 s; a failed build waits
    the build back-off. `how` (a rollback): "auto" takes the instant way when it reverts
    no commit, "instant" also when it does, "redeploy" never."""
    instant = move == "rollback" and how != "redeploy" and bool(getattr(flag, "instant", False))
    if move == "rollback" and how == "instant" and not instant:
        progress("no instant rollback here (the runbook's [flag] gives none): building instead")
    attempt, delay, step, last_error, fallback = 0, retry_delay_s, 0, "", ""
    while True:
        attempt += 1
        lasting = permanent = False  # a refusal that waiting will not cure
        built = None
        try:
            if instant:
                try:
                    read_back = await flag.roll_back(  # type: ignore[attr-defined]
                        percent, progress, revert_ok=how == "instant"
                    )
                except NoInstant as exc:
                    fallback = exc.why
                    instant = not exc.lasting
                    expected = exc.plan.expected() if exc.plan is not None else ""
                    progress(f"no instant rollback: {exc.why}; PATCH + redeploy instead{expected}")
                    read_back = await flag.set(percent, progress)
            else:
                read_back = await flag.set(percent, progress)
            problem = why_unverified(read_back, percent)
            if problem is None:
                return Tried(read_back, attempt, "", fallback)
            last_error = shown = f"not verified: {problem}"
            if read_back.how.startswith("build"):
                built = read_back.deployment_id  # built, and still not it: not again at once
        except FlagError as exc:
            # The journal gets the message; what the tool printed is for the screen only.
            last_error, shown = exc.journaled, str(exc)
            lasting, permanent, built = not exc.retryable, exc.permanent, exc.built
        if attempts is not None and attempt >= attempts:
            if shown != last_error:
                progress(f"attempt {attempt} failed: {shown}")
            return Tried(None, attempt, last_error, fallback)
        if permanent:
            mark_of = getattr(flag, "token_mark", None)
            mark = mark_of() if mark_of is not None else None
            if mark is None:
                # The same request with the same token and names is refused the same way.
                progress(
                    f"attempt {attempt} failed: {shown}; stopped: sending it again changes "
                    "nothing until that is fixed"
                )
                return Tried(None, attempt, f"{last_error}; stopped retrying", fallback)
            progress(f"attempt {attempt} failed: {shown}; waiting for the token file to change")
            await _until_changed(mark_of, mark, progress)
            continue
        if built is not None:
            wait = backoff(step, build_backoff_s)
            step += 1
            progress(
                f"attempt {attempt} failed: {shown}; retrying in {wait:g}s (one new build per "
                f"back-off step: {_steps(build_backoff_s)})"
            )
            await asyncio.sleep(wait)
            continue
        # A rollback keeps trying whatever failed; a lasting failure needs a human meanwhile.
        todo = "; it will not pass by itself: fix it while this retries" if lasting else ""
        progress(f"attempt {attempt} failed: {shown}{todo}; retrying in {delay:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def _steps(steps: Sequence[float]) -> str:
    """The back-off as people say it.

    >>> _steps(BUILD_BACKOFF_S)
    '30s, 1m, 2m, then every 5m'
    """
    said = [humanize(s) for s in steps]
    return ", ".join(said[:-1]) + f", then every {said[-1]}" if len(said) > 1 else said[0]


async def _until_changed(mark_of: Callable[[], str | None], mark: str, progress: Progress) -> None:
    """Wait until the token source changes (an operator wrote a new token), saying so now
    and then."""
    said = time.monotonic()
    while mark_of() == mark:
        await asyncio.sleep(TOKEN_POLL_S)
        if time.monotonic() - said >= TOKEN_SAY_S:
            said = time.monotonic()
            progress("still waiting for a new token in the token file (the old one is refused)")
    progress("the token file changed: trying again")
