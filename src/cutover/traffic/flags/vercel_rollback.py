"""Which deployment an instant rollback goes back to, and what that also takes back.

Every Vercel deployment is immutable and stays up, built with the env values stored when it
was created; Instant Rollback re-points production at one of them without a build. A
deployment qualifies when the journal knows it carries the target percent and it has
served production. Among those, one of the live deployment's commit is preferred (cutover's
own redeploys copy their source's commit): going back to an older commit also takes back
the code deployed since, which nobody asked for in a traffic rollback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cutover.record.state import KnownDeployment
from cutover.traffic.flags.base import (
    Deployment,
    FlagError,
    FlagState,
    NoInstant,
    Progress,
    RollbackPlan,
    _quiet,
    check_percent,
    describe,
)

# Refusals of an instant rollback that say "not this way" (a plan limit, a deployment gone,
# one that cannot be gone back to), not "not you": the rollback then builds instead. A 403
# counts too: the same token has just read the project, so it is this action the plan or
# the token's scope refuses, and a build may still be allowed (if not, that says so).
REFUSED_INSTANT = frozenset({400, 402, 403, 404, 409, 422})


def deployment_id(deployment: dict[str, Any] | None) -> str | None:
    if not deployment:
        return None
    found = deployment.get("uid") or deployment.get("id")
    return str(found) if found else None


def when(ms: Any) -> datetime | None:
    """A Vercel timestamp (ms since the epoch) as a time.

    >>> when(1_740_821_400_000)
    datetime.datetime(2025, 3, 1, 9, 30, tzinfo=datetime.timezone.utc)
    >>> when(None) is None
    True
    """
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def from_api(raw: dict[str, Any], carries: int | None) -> Deployment:
    """A deployment object of Vercel's API (a listing, a project's targets.production)."""
    meta = raw.get("meta") or {}
    return Deployment(
        id=str(raw.get("uid") or raw.get("id")),
        carries=carries,
        created_at=when(raw.get("createdAt")),
        ready_at=when(raw.get("ready") or raw.get("readyAt")),
        commit=meta.get("githubCommitSha") or None,
        commit_message=str(meta.get("githubCommitMessage") or ""),
    )


def from_known(known: KnownDeployment) -> Deployment:
    return Deployment(
        id=known.id,
        carries=known.percent,
        created_at=known.created_at,
        ready_at=known.ready_at,
        commit=known.commit,
        commit_message=known.commit_message,
    )


def last_build_s(listed: Iterable[dict[str, Any]]) -> float | None:
    """How long the newest READY build took, from its createdAt and ready (ms).

    >>> last_build_s([{"readyState": "READY", "createdAt": 1000, "ready": 46000}])
    45.0
    >>> last_build_s([{"readyState": "ERROR", "createdAt": 1000}]) is None
    True
    """
    for raw in sorted(listed, key=lambda d: d.get("createdAt") or 0, reverse=True):
        ready, created = raw.get("ready"), raw.get("createdAt")
        if raw.get("readyState") == "READY" and ready and created and ready > created:
            return (ready - created) / 1000
    return None


def choose(
    percent: int,
    known: Mapping[str, KnownDeployment],
    live: Deployment | None,
    listed: Iterable[Deployment],
    *,
    revert_ok: bool = False,
    build_s: float | None = None,
) -> RollbackPlan:
    """The plan for a rollback to `percent`. `listed`: the platform's READY production
    deployments, newest first (their commits say what an older target takes back; one
    the platform no longer lists as READY is not gone back to).

    >>> t = lambda h: datetime(2025, 3, 1, h, tzinfo=UTC)
    >>> known = {
    ...     "d0": KnownDeployment("d0", 0, t(1), served_at=t(1), commit="aaa"),
    ...     "d1": KnownDeployment("d1", 10, t(2), served_at=t(2), commit="aaa"),
    ...     "d2": KnownDeployment("d2", 0, t(3), served_at=t(3), commit="aaa"),
    ...     "d3": KnownDeployment("d3", 0, t(4), commit="aaa"),  # never served
    ...     "d4": KnownDeployment("d4", 10, t(5), served_at=t(5), commit="aaa"),
    ... }
    >>> live = Deployment("d4", 10, t(5), commit="aaa")
    >>> listed = [from_known(k) for k in reversed(known.values())]
    >>> choose(0, known, live, listed).target.id   # the newest that served production
    'd2'
    >>> choose(50, known, live, listed).why
    'no deployment known to carry 50 % has served production'

    A newer commit went live since the only one that qualifies: it would be taken back too.

    >>> live = Deployment("d5", 10, t(6), commit="bbbbbbbbb", commit_message="fix footer")
    >>> plan = choose(0, known, live, [live, *listed])
    >>> plan.instant, plan.target.id, plan.reverts
    (False, 'd2', ("bbbbbbb 'fix footer'",))
    >>> choose(0, known, live, [live, *listed], revert_ok=True).instant
    True
    """
    listed = list(listed)
    on_platform = {d.id for d in listed}
    candidates = [
        k
        for k in known.values()
        if k.percent == percent
        and k.served_at is not None
        and (live is None or k.id != live.id)
        and (not listed or k.id in on_platform)
    ]
    if not candidates:
        return RollbackPlan(
            percent,
            False,
            why=f"no deployment known to carry {percent} % has served production",
            build_s=build_s,
        )
    newest_first = sorted(
        candidates,
        key=lambda k: k.created_at or k.served_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    live_commit = live.commit if live is not None else None
    same = [k for k in newest_first if k.commit == live_commit]
    if same:
        return RollbackPlan(percent, True, target=from_known(same[0]), build_s=build_s)
    target = from_known(newest_first[0])
    reverts = _taken_back(target, live, listed)
    if reverts and not revert_ok:
        n = len(reverts)
        return RollbackPlan(
            percent,
            False,
            why=(
                f"an instant rollback to {describe(target)} would also revert {n} "
                f"commit{'s' if n != 1 else ''} deployed since: {', '.join(reverts[:5])}"
                + (" …" if n > 5 else "")
            ),
            target=target,
            reverts=reverts,
            build_s=build_s,
        )
    return RollbackPlan(percent, True, target=target, reverts=reverts, build_s=build_s)


def _taken_back(
    target: Deployment, live: Deployment | None, listed: list[Deployment]
) -> tuple[str, ...]:
    """The commits of production deployments newer than `target` that are not its own,
    newest first, each once."""
    since = target.created_at or datetime.min.replace(tzinfo=UTC)
    newer = [d for d in listed if d.created_at is not None and d.created_at > since]
    if live is not None and live.id not in {d.id for d in newer}:
        newer.insert(0, live)
    seen: dict[str, str] = {}
    for d in sorted(newer, key=lambda d: d.created_at or since, reverse=True):
        if d.commit and d.commit != target.commit and d.commit not in seen:
            seen[d.commit] = d.short
    return tuple(seen.values())


class InstantRollback:
    """VercelFlag's instant rollback: the plan (read only) and the rollback itself. Uses
    the flag's API calls (_production, _recent_deployments, _request, _until_serving), its
    journal knowledge (_known_now), store and read."""

    instant: bool

    async def plan_rollback(self, percent: int, *, revert_ok: bool = False) -> RollbackPlan:
        """What a rollback to `percent` would do now (read only)."""
        if not self.instant:
            return RollbackPlan(percent, False, why='the runbook says [flag] rollback = "redeploy"')
        production, recent = await asyncio.gather(self._production(), self._recent_deployments(100))
        return self._plan(percent, production, recent, revert_ok)

    def _plan(
        self,
        percent: int,
        production: dict[str, Any] | None,
        recent: list[dict[str, Any]],
        revert_ok: bool,
    ) -> RollbackPlan:
        known = self._known_now()
        live = None
        if production is not None:
            carried = known.get(deployment_id(production) or "")
            live = from_api(production, carried.percent if carried else None)
        listed = [from_api(d, None) for d in recent if d.get("readyState") == "READY"]
        return choose(
            percent,
            known,
            live,
            listed,
            revert_ok=revert_ok,
            build_s=last_build_s(recent),
        )

    async def roll_back(
        self, percent: int, progress: Progress = _quiet, *, revert_ok: bool = False
    ) -> FlagState:
        """Re-point production at the newest deployment known to carry `percent` (no
        build), verify production serves it, then set the variable so future builds carry
        it too. NoInstant when that cannot be done; the caller builds instead."""
        check_percent(percent)

        def say(line: str) -> None:
            progress(self._redact(line))

        if not self.instant:
            raise NoInstant('the runbook says [flag] rollback = "redeploy"')
        known = self._known_now()
        if not any(k.percent == percent and k.served_at is not None for k in known.values()):
            # Nothing to ask the platform about: build at once.
            raise NoInstant(f"no deployment known to carry {percent} % has served production")
        production, recent = await asyncio.gather(self._production(), self._recent_deployments(100))
        carried = known.get(deployment_id(production) or "")
        if production is not None and carried is not None and carried.percent == percent:
            # An earlier attempt (or another rollback) already re-pointed it.
            target = from_known(carried)
            say(f"production already serves {describe(target)}")
            live_at = time.monotonic()
        else:
            plan = self._plan(percent, production, recent, revert_ok)
            if not plan.instant or plan.target is None:
                raise NoInstant(plan.why, plan=plan)
            target = plan.target
            live_at = await self._re_point(target, percent, say)
        await self.store(percent, say)
        state = await self.read()
        return replace(state, how=f"instant rollback to {describe(target)}", live_at=live_at)

    async def _re_point(self, target: Deployment, percent: int, say: Progress) -> float:
        say(f"instant rollback: POST rollback to {describe(target)}")
        try:
            await self._request(
                "POST",
                f"/v1/projects/{self.project}/rollback/{target.id}",
                params={"description": f"cutover: rollback to {percent} %"},
            )
        except FlagError as exc:
            if exc.status in REFUSED_INSTANT:
                raise NoInstant(
                    f"Vercel refused the instant rollback to {target.id}: {exc}"
                ) from None
            raise
        live_at = await self._until_serving(target.id)
        say(f"production serves {target.id}: traffic gets {percent} % now, no build")
        return live_at
