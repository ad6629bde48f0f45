"""The rollout percent as a Vercel environment variable, made live by a production redeploy."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from cutover.runbook.durations import humanize
from cutover.sources import httpclient
from cutover.traffic.flags.base import (
    FlagError,
    FlagState,
    Progress,
    _quiet,
    check_percent,
    parse_percent,
)

httpx = httpclient.httpx()  # without its command-line tool (see cutover.sources.httpclient)

DEFAULT_API_URL = "https://api.vercel.com"
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


class VercelFlag:
    """Reads and sets one env var of one Vercel project through the REST API."""

    def __init__(
        self,
        *,
        project: str,
        key: str,
        token: str,
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
    ):
        self.name = f"vercel:{project}/{key}"
        self.project = project
        self.key = key
        self.target = target
        self.team_id = team_id
        self.redeploy = redeploy
        self.max_attempts = max(1, max_attempts)
        self.retry_base_s = retry_base_s
        self.max_retry_after_s = max_retry_after_s
        self.poll_interval_s = poll_interval_s
        self.deploy_timeout_s = deploy_timeout_s
        self.timeout_s = timeout_s
        self._token = token
        # The env var's entry from the last lookup: a set right after a read (every move
        # reads first) saves a round trip before the PATCH. Dropped on any 404.
        self._entry: dict[str, Any] | None = None
        self._client = httpclient.client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "cutover"},
            timeout=timeout_s,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def _error(self, message: str, *, retryable: bool) -> FlagError:
        return FlagError(self._redact(message), retryable=retryable)

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            return "check that the token is valid and can access the project (and team_id)"
        if status == 404:
            return f"check [flag] project ({self.project}) and team_id in the runbook"
        if status == 429:
            return "Vercel is rate limiting this token; wait, then try again"
        if status >= 500:
            return "Vercel is failing: check vercel-status.com and try again"
        return "check the request against the runbook's [flag]"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if self.team_id:
            query["teamId"] = self.team_id
        where = f"{method} {path}"
        last: FlagError | None = None
        for attempt in range(1, self.max_attempts + 1):
            delay = self.retry_base_s * 2 ** (attempt - 1)
            try:
                resp = await self._client.request(method, path, params=query, json=body)
            except httpx.TimeoutException:
                last = self._error(
                    f"Vercel {where}: no answer within {self.timeout_s:g} s", retryable=True
                )
                # A POST that timed out may have been carried out: never send it twice.
                if not idempotent:
                    raise self._error(
                        f"{last}; a deployment may have started: check the Vercel dashboard "
                        "before trying again",
                        retryable=True,
                    ) from None
            except httpx.TransportError as exc:
                last = self._error(
                    f"Vercel {where}: cannot connect ({type(exc).__name__}: {exc})",
                    retryable=True,
                )
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise last from None
            else:
                if resp.is_success:
                    try:
                        return resp.json()
                    except ValueError:
                        raise self._error(
                            f"Vercel {where}: HTTP {resp.status_code} but the body is not JSON; "
                            "check VERCEL_API_URL points at the Vercel API",
                            retryable=False,
                        ) from None
                code, message = _error_fields(resp)
                status = resp.status_code
                retryable = status == 429 or status >= 500
                last = self._error(
                    f"Vercel {where}: HTTP {status} {_status_word(status)}"
                    f" ({code}: {message}); {self._hint(status)}",
                    retryable=retryable,
                )
                if not retryable or (status >= 500 and not idempotent):
                    raise last
                if status == 429:
                    after = _retry_after(resp)
                    if after is not None:
                        if after > self.max_retry_after_s:
                            raise self._error(
                                f"Vercel {where}: HTTP 429 ({code}: {message}); Vercel asks "
                                f"to wait {humanize(after)} before trying again",
                                retryable=True,
                            )
                        delay = max(delay, after)
            if attempt < self.max_attempts:
                await asyncio.sleep(delay)
        assert last is not None
        raise self._error(f"{last} (gave up after {self.max_attempts} attempts)", retryable=True)

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

    async def _live_deployment(self) -> dict[str, Any] | None:
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

    async def _recent_deployments(self) -> list[dict[str, Any]]:
        """The newest production deployments in any state: one still building may change
        what is live after we look."""
        data = await self._request(
            "GET",
            "/v6/deployments",
            params={"projectId": self.project, "target": "production", "limit": 5},
        )
        return [d for d in data.get("deployments") or [] if isinstance(d, dict)]

    # -- the Flag interface -----------------------------------------------------------------

    async def read(self) -> FlagState:
        entry = await self._find_env()
        env, live, recent = await asyncio.gather(
            self._read_value(entry["id"]), self._live_deployment(), self._recent_deployments()
        )
        raw = env.get("value")
        raw = None if raw is None else str(raw)
        percent, note = parse_percent(raw)
        updated = env.get("updatedAt", entry.get("updatedAt"))
        live_id = None if live is None else (live.get("uid") or live.get("id"))
        pending = _in_flight(recent, None if live is None else live.get("createdAt"))
        judged = judge_live(percent, updated, None if live is None else live.get("createdAt"))
        parts = [f"{self.key}={'' if raw is None else raw.strip()[:40]}"]
        if note:
            parts.append(note)
        if live is not None:
            carries = "" if judged.needs_redeploy else f" carries {judged.live_percent}"
            parts.append(f"live {live_id} {live.get('readyState', 'READY')}{carries}")
        if judged.note:
            parts.append(judged.note)
        pending_id = pending_state = None
        if pending is not None:
            pending_id = str(pending.get("uid") or pending.get("id"))
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
        )

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState:
        check_percent(percent)

        def say(line: str) -> None:
            progress(self._redact(line))

        entry = self._entry or await self._find_env()
        say(f"PATCH {self.key}={percent}")
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
        say(f"read back {back}")
        if back is None or str(back).strip() != str(percent):
            raise self._error(
                f"Vercel accepted {self.key}={percent} but reads back {back!r}; someone else "
                "may be changing it: read the flag again before acting",
                retryable=False,
            )
        if self.redeploy:
            await self._redeploy(say)
        return await self.read()

    async def _redeploy(self, say: Progress) -> None:
        not_live = f"{self.key} IS changed but not live"
        source = await self._live_deployment()
        if source is None:
            raise self._error(
                f"no READY production deployment of {self.project} to redeploy from; "
                f"{not_live}: deploy the project once, then set the flag again",
                retryable=False,
            )
        source_id = source.get("uid") or source.get("id")
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
        new_id = created.get("id") or created.get("uid")
        say(f"redeploy from {source_id} → {new_id}")
        started = time.monotonic()
        state = created.get("readyState")
        seen = None
        while True:
            if state != seen:
                seen = state
                if state == "READY":
                    say(f"{new_id} READY ({time.monotonic() - started:.0f} s)")
                    return
                say(f"{new_id} {state}")
            if state in FAILED_STATES:
                raise self._error(
                    f"deployment {new_id} ended {state}: {not_live}; see the build log in the "
                    "Vercel dashboard, fix it, then set the flag again",
                    retryable=False,
                )
            if time.monotonic() - started > self.deploy_timeout_s:
                raise self._error(
                    f"deployment {new_id} still {state} after {self.deploy_timeout_s:g} s; "
                    f"{not_live}: watch it in the Vercel dashboard",
                    retryable=False,
                )
            await asyncio.sleep(self.poll_interval_s)
            try:
                polled = await self._request("GET", f"/v13/deployments/{new_id}")
            except FlagError as exc:
                raise self._error(
                    f"lost track of deployment {new_id}: {exc}; {not_live} until it is READY",
                    retryable=exc.retryable,
                ) from None
            state = polled.get("readyState")

    async def aclose(self) -> None:
        await self._client.aclose()


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


def _error_fields(resp: httpx.Response) -> tuple[str, str]:
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or "no_code")
    message = str(error.get("message") or resp.reason_phrase or "no message")
    return code, message[:200]


def _status_word(status: int) -> str:
    words = {401: "unauthorized", 403: "forbidden", 404: "not found", 429: "rate limited"}
    return words.get(status, "server error" if status >= 500 else "refused")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
