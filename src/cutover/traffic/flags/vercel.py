"""The rollout percent as a Vercel environment variable, made live by a production redeploy,
or taken back in seconds by Instant Rollback to a deployment known to carry the target."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cutover.record.state import KnownDeployment
from cutover.traffic.flags import vercel_rollback as choosing
from cutover.traffic.flags.base import (
    FlagError,
    FlagState,
    Known,
    Progress,
    _nothing_known,
    _quiet,
    check_percent,
    parse_percent,
)
from cutover.traffic.flags.vercel_rest import DEFAULT_API_URL, VercelAPI

__all__ = ["DEFAULT_API_URL", "Liveness", "VercelFlag", "judge_live"]

FAILED_STATES = frozenset({"ERROR", "CANCELED"})
FINAL_STATES = FAILED_STATES | {"READY"}


@dataclass(frozen=True)
class Liveness:
    """Whether a stored value is what the live deployment carries."""

    live_percent: int | None
    needs_redeploy: bool
    note: str


def judge_live(
    percent: int | None, env_updated_at: int | None, deployment_created_at: int | None
) -> Liveness:
    """Decide what the live deployment carries from timestamps (ms epoch), as Vercel gives them.

    Vercel does not report a deployment's env values, but a deployment is built with the
    values stored when it was created: so the value is live only if the live deployment is
    strictly newer than the env var's last change. Anything unknown fails closed.

    >>> judge_live(10, 1_000, 2_000)
    Liveness(live_percent=10, needs_redeploy=False, note='')
    >>> judge_live(50, 3_000, 2_000).needs_redeploy
    True
    >>> judge_live(50, 3_000, 2_000).note
    'changed after the live deployment: needs a redeploy'
    >>> judge_live(50, 2_000, 2_000).needs_redeploy   # same millisecond: cannot tell
    True
    >>> judge_live(50, 1_000, None).note
    'no READY production deployment: nothing is live'
    >>> judge_live(50, None, 2_000).note
    'env var has no updatedAt: cannot tell if it is live'
    """
    if deployment_created_at is None:
        return Liveness(None, True, "no READY production deployment: nothing is live")
    if env_updated_at is None:
        return Liveness(None, True, "env var has no updatedAt: cannot tell if it is live")
    if deployment_created_at > env_updated_at:
        return Liveness(percent, False, "")
    return Liveness(None, True, "changed after the live deployment: needs a redeploy")


def _targets(entry: dict[str, Any]) -> list[str]:
    target = entry.get("target")
    if isinstance(target, str):
        return [target]
    return list(target or [])


_id = choosing.deployment_id


class VercelFlag(choosing.InstantRollback):
    """Reads and sets one env var of one Vercel project through the REST API; rolls back by
    re-pointing production at a deployment the journal knows carries the target."""

    def __init__(
        self,
        *,
        project: str,
        key: str,
        token: str = "",
        target: str = "production",
        team_id: str | None = None,
        redeploy: bool = True,
        base_url: str = DEFAULT_API_URL,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        retry_base_s: float = 0.5,
        max_retry_after_s: float = 60.0,
        poll_interval_s: float = 2.0,
        deploy_timeout_s: float = 600.0,
        token_env: str = "VERCEL_TOKEN",
        token_file: Path | None = None,
        known: Known | None = None,
        rollback: str = "instant",
        verify_timeout_s: float = 30.0,
    ):
        self.name = f"vercel:{project}/{key}"
        self.project = project
        self.key = key
        self.target = target
        self.team_id = team_id
        self.redeploy = redeploy
        self.poll_interval_s = poll_interval_s
        self.deploy_timeout_s = deploy_timeout_s
        self._usual_build_s: float | None = None  # the last build's, from Vercel's times
        self.verify_timeout_s = verify_timeout_s
        # rollback = "redeploy" in the runbook: every rollback sets the variable and builds.
        self.instant = rollback == "instant" and redeploy
        self._known = known or _nothing_known
        self.api = VercelAPI(
            project=project,
            token=token,
            token_env=token_env,
            token_file=token_file,
            team_id=team_id,
            base_url=base_url,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            retry_base_s=retry_base_s,
            max_retry_after_s=max_retry_after_s,
        )
        # The env var's entry from the last lookup: a set right after a read (every move
        # reads first) saves a round trip before the PATCH. Dropped on any 404.
        self._entry: dict[str, Any] | None = None
        # A build this flag started for a percent and has not seen end: a retry waits for
        # it instead of starting another (a slow build is not a failed one).
        self._building: tuple[int, str] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self.api.redact(text)

    def _error(self, message: str, *, retryable: bool, **extra: Any) -> FlagError:
        return self.api.error(message, retryable=retryable, **extra)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return await self.api.request(method, path, **kwargs)

    def token_mark(self) -> str | None:
        return self.api.token_mark()

    def _known_now(self) -> Mapping[str, KnownDeployment]:
        """What the journal knows each deployment carries; nothing when it cannot be read
        (then timestamps judge, failing closed, and no instant rollback is offered)."""
        try:
            return self._known()
        except Exception:  # a journal that cannot be read must not stop a flag read
            return {}

    # -- the API calls ----------------------------------------------------------------------

    async def _find_env(self) -> dict[str, Any]:
        data = await self._request("GET", f"/v10/projects/{self.project}/env")
        matches = [
            e
            for e in data.get("envs", [])
            if e.get("key") == self.key and self.target in _targets(e)
        ]
        # A branch-specific entry only applies to that branch; the plain one is the flag.
        matches.sort(key=lambda e: bool(e.get("gitBranch")))
        if not matches:
            raise self._error(
                f"Vercel project {self.project} has no env var {self.key} for target "
                f"{self.target}; create it (Settings → Environment Variables) with value 0",
                retryable=False,
            )
        self._entry = matches[0]
        return matches[0]

    async def _read_value(self, env_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v1/projects/{self.project}/env/{env_id}")

    async def _newest_ready(self) -> dict[str, Any] | None:
        """The newest READY production deployment: what a redeploy builds from (the newest
        code), whether or not production serves it."""
        data = await self._request(
            "GET",
            "/v6/deployments",
            params={
                "projectId": self.project,
                "target": "production",
                "state": "READY",
                "limit": 1,
            },
        )
        deployments = data.get("deployments") or []
        return deployments[0] if deployments else None

    async def _recent_deployments(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest production deployments in any state: one still building may change
        what is live after we look."""
        data = await self._request(
            "GET",
            "/v6/deployments",
            params={"projectId": self.project, "target": "production", "limit": limit},
        )
        return [d for d in data.get("deployments") or [] if isinstance(d, dict)]

    async def _production(self) -> dict[str, Any] | None:
        """The deployment production serves now: the project's production target (after an
        instant rollback, not the newest build)."""
        project = await self._request("GET", f"/v9/projects/{self.project}")
        target = (project.get("targets") or {}).get("production")
        return target if isinstance(target, dict) and _id(target) else None

    # -- the Flag interface -----------------------------------------------------------------

    async def read(self) -> FlagState:
        entry = await self._find_env()
        env, production, recent = await asyncio.gather(
            self._read_value(entry["id"]), self._production(), self._recent_deployments()
        )
        raw = env.get("value")
        raw = None if raw is None else str(raw)
        percent, note = parse_percent(raw)
        updated = env.get("updatedAt", entry.get("updatedAt"))
        ready = [d for d in recent if d.get("readyState") == "READY"]
        newest = max(ready, key=lambda d: d.get("createdAt") or 0, default=None)
        live = production or newest
        live_id = _id(live)
        # Production behind the newest READY build: an instant rollback pinned it.
        pinned = (
            live_id
            if live is not None
            and newest is not None
            and _id(newest) != live_id
            and (newest.get("createdAt") or 0) > (live.get("createdAt") or 0)
            else None
        )
        known = self._known_now().get(live_id or "")
        if known is not None:
            # The journal knows what it was built with: timestamps cannot say, once
            # production serves an older deployment than the variable's last change.
            judged = choosing_live(percent, known.percent)
        else:
            judged = judge_live(percent, updated, None if live is None else live.get("createdAt"))
        pending = None if pinned else _in_flight(recent, (live or {}).get("createdAt"))
        parts = [f"{self.key}={'' if raw is None else raw.strip()[:40]}"]
        if note:
            parts.append(note)
        if live is not None:
            carries = "" if judged.live_percent is None else f" carries {judged.live_percent}"
            parts.append(f"live {live_id} {live.get('readyState', 'READY')}{carries}")
        if judged.note:
            parts.append(judged.note)
        if pinned:
            parts.append(
                f"production pinned to {pinned}: newer builds ({_id(newest)}) are not live "
                "until one is promoted"
            )
        pending_id = pending_state = None
        if pending is not None:
            pending_id = _id(pending)
            pending_state = str(pending.get("readyState") or pending.get("state") or "QUEUED")
            parts.append(f"deployment {pending_id} {pending_state}: not final yet")
        return FlagState(
            percent=percent,
            raw=raw,
            live_percent=judged.live_percent,
            deployment_id=live_id,
            detail=self._redact(" · ".join(parts)),
            needs_redeploy=judged.needs_redeploy,
            pending_deployment=pending_id,
            pending_state=pending_state,
            remedy="roll back (it sets the variable and redeploys), or redeploy production "
            "by hand, then reconcile",
            serving=None if live is None else choosing.from_api(live, judged.live_percent),
            pinned=pinned,
        )

    async def store(self, percent: int, progress: Progress = _quiet) -> None:
        """Set the variable and read it back, without building: what future builds carry."""
        check_percent(percent)
        entry = self._entry or await self._find_env()
        progress(self._redact(f"PATCH {self.key}={percent}"))
        try:
            await self._request(
                "PATCH",
                f"/v9/projects/{self.project}/env/{entry['id']}",
                body={"value": str(percent)},
            )
        except FlagError:
            self._entry = None  # the var may have been recreated: look it up again next time
            raise
        back = (await self._read_value(entry["id"])).get("value")
        progress(self._redact(f"read back {back}"))
        if back is None or str(back).strip() != str(percent):
            raise self._error(
                f"Vercel accepted {self.key}={percent} but reads back {back!r}; someone else "
                "may be changing it: read the flag again before acting",
                retryable=False,
            )

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState:
        check_percent(percent)

        def say(line: str) -> None:
            progress(self._redact(line))

        if self._building is not None and self._building[0] == percent:
            # An earlier attempt's build for this percent may still end READY: setting the
            # variable again would make it older than the change, and useless.
            entry = self._entry or await self._find_env()
            if str((await self._read_value(entry["id"])).get("value")).strip() != str(percent):
                self._building = None  # changed meanwhile: that build does not carry it
        if self._building is None or self._building[0] != percent:
            await self.store(percent, say)
        if not self.redeploy:
            return await self.read()
        built, live_at = await self._redeploy(say, percent)
        state = await self.read()
        promoted = False
        if state.deployment_id != built:
            promoted, live_at = await self._go_live(
                built, say, pinned=bool(state.pinned), serving=state.deployment_id
            )
            state = await self.read()
        how = f"build {built} READY" + (", promoted (production was pinned)" if promoted else "")
        return replace(state, how=how, live_at=live_at, promoted=built if promoted else None)

    # While a build runs, how often its state and time so far are said (a state change is
    # said at once).
    progress_every_s = 10.0

    async def _redeploy(self, say: Progress, percent: int) -> tuple[str, float]:
        """Build production anew with what is stored and wait until READY. Returns the
        build and when (monotonic) it was READY."""
        not_live = f"{self.key} IS changed but not live"
        if self._building is not None and self._building[0] == percent:
            new_id = self._building[1]
            say(f"waiting for {new_id}, started for {percent} % by an earlier attempt")
            state = None
        else:
            new_id, state = await self._start_build(not_live, say)
            self._building = (percent, new_id)
        started = told = time.monotonic()
        seen = None
        while True:
            if state == seen and time.monotonic() - told >= self.progress_every_s:
                told = time.monotonic()  # a long build says how long, against the usual
                say(_building_words(new_id, state, told - started, self._usual_build_s))
            if state != seen and state is not None:
                seen = state
                if state == "READY":
                    self._building = None
                    say(f"{new_id} READY ({time.monotonic() - started:.0f} s)")
                    break
                say(f"{new_id} {state}")
            if state in FAILED_STATES:
                self._building = None
                raise self._error(
                    f"deployment {new_id} ended {state}: {not_live}; see the build log in the "
                    "Vercel dashboard, fix it, then set the flag again",
                    retryable=False,
                    built=new_id,
                )
            if time.monotonic() - started > self.deploy_timeout_s:
                raise self._error(
                    f"deployment {new_id} still {state} after {self.deploy_timeout_s:g} s; "
                    f"{not_live}: watch it in the Vercel dashboard",
                    retryable=False,
                    built=new_id,
                )
            if state is not None:
                await asyncio.sleep(self.poll_interval_s)
            try:
                polled = await self._request("GET", f"/v13/deployments/{new_id}")
            except FlagError as exc:
                raise self._error(
                    f"lost track of deployment {new_id}: {exc}; {not_live} until it is READY",
                    retryable=exc.retryable,
                ) from None
            state = polled.get("readyState")
        return new_id, time.monotonic()

    async def _start_build(self, not_live: str, say: Progress) -> tuple[str, Any]:
        source = await self._newest_ready()
        if source is None:
            raise self._error(
                f"no READY production deployment of {self.project} to redeploy from; "
                f"{not_live}: deploy the project once, then set the flag again",
                retryable=False,
            )
        source_id = _id(source)
        self._usual_build_s = _build_s(source)
        try:
            created = await self._request(
                "POST",
                "/v13/deployments",
                params={"forceNew": 1},
                body={
                    "deploymentId": source_id,
                    "name": source.get("name") or self.project,
                    "target": "production",
                    "meta": {"action": "redeploy"},
                },
                idempotent=False,
            )
        except FlagError as exc:
            raise self._error(
                f"redeploy failed: {exc}; {not_live}", retryable=exc.retryable
            ) from None
        new_id = str(created.get("id") or created.get("uid"))
        say(f"redeploy from {source_id} → {new_id}")
        return new_id, created.get("readyState")

    async def _go_live(
        self, new_id: str, say: Progress, *, pinned: bool, serving: str | None
    ) -> tuple[bool, float]:
        """A READY build serves production by itself (give it a moment to be assigned),
        unless an instant rollback pinned production: then it is promoted (no rebuild).
        Returns whether it was promoted, and when (monotonic) production served it."""
        deadline = time.monotonic() + (0 if pinned else self.verify_timeout_s)
        production = None
        while time.monotonic() < deadline:
            await asyncio.sleep(min(self.poll_interval_s, 0.5))
            production = await self._production()
            if _id(production) == new_id:
                return False, time.monotonic()
        pinned_to = _id(production) or serving or "an earlier deployment"
        say(f"production is pinned to {pinned_to}: promote {new_id}")
        await self._request(
            "POST", f"/v10/projects/{self.project}/promote/{new_id}", idempotent=True
        )
        live_at = await self._until_serving(new_id)
        say(f"promoted {new_id}: production serves it and follows new builds again")
        return True, live_at

    async def _until_serving(self, deployment_id: str) -> float:
        """Poll the project until production serves `deployment_id`; when (monotonic)."""
        started, pause = time.monotonic(), 0.02
        while True:
            production = await self._production()
            if _id(production) == deployment_id:
                return time.monotonic()
            if time.monotonic() - started > self.verify_timeout_s:
                raise self._error(
                    f"Vercel accepted the change but production still serves "
                    f"{_id(production)}, not {deployment_id}, after {self.verify_timeout_s:g} s; "
                    "look at the project's Deployments page",
                    retryable=True,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def aclose(self) -> None:
        await self.api.aclose()


def choosing_live(percent: int | None, carries: int) -> Liveness:
    """What production serves, when the journal knows what it carries.

    >>> choosing_live(0, 0)
    Liveness(live_percent=0, needs_redeploy=False, note='')
    >>> choosing_live(10, 0).note
    'the live deployment carries 0 % (the journal knows): not what is stored'
    """
    if percent == carries:
        return Liveness(carries, False, "")
    return Liveness(
        carries,
        True,
        f"the live deployment carries {carries} % (the journal knows): not what is stored",
    )


def _in_flight(recent: list[dict[str, Any]], live_created: int | None) -> dict[str, Any] | None:
    """The newest deployment that is not final and newer than the live one: when it ends
    READY it becomes what traffic sees.

    >>> _in_flight([{"uid": "b", "readyState": "BUILDING", "createdAt": 3},
    ...             {"uid": "a", "readyState": "READY", "createdAt": 2}], 2)["uid"]
    'b'
    >>> _in_flight([{"uid": "b", "readyState": "ERROR", "createdAt": 3}], 2) is None
    True
    >>> _in_flight([{"uid": "old", "readyState": "BUILDING", "createdAt": 1}], 2) is None
    True
    """
    candidates = [
        d
        for d in recent
        if str(d.get("readyState") or d.get("state") or "") not in FINAL_STATES
        and (live_created is None or (d.get("createdAt") or 0) > live_created)
    ]
    return max(candidates, key=lambda d: d.get("createdAt") or 0, default=None)


def _build_s(deployment: dict[str, Any]) -> float | None:
    """How long a READY deployment took to build, from Vercel's createdAt and ready (ms).

    >>> _build_s({"createdAt": 1000, "ready": 46000}), _build_s({"createdAt": 1000})
    (45.0, None)
    >>> _build_s({"createdAt": 1000, "ready": float("inf")})  # JSON's Infinity: not a time
    """
    ready, created = deployment.get("ready"), deployment.get("createdAt")
    if not all(isinstance(t, int | float) and math.isfinite(t) for t in (ready, created)):
        return None
    return (ready - created) / 1000 if ready > created else None


def _building_words(deployment: str, state: Any, elapsed_s: float, usual_s: float | None) -> str:
    """`dpl_2 BUILDING for 30 s (the last build took 45 s)`.

    >>> _building_words("dpl_2", "BUILDING", 30.4, 45.0)
    'dpl_2 BUILDING for 30 s (the last build took 45 s)'
    >>> _building_words("dpl_2", None, 61, None)
    'dpl_2 QUEUED for 61 s'
    """
    words = f"{deployment} {state or 'QUEUED'} for {elapsed_s:.0f} s"
    return words + (f" (the last build took {usual_s:.0f} s)" if usual_s is not None else "")
