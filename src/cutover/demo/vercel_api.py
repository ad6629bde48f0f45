"""A local Vercel-compatible REST API (env vars, deployments, redeploys, Instant Rollback and
promote) for tests and the demo.

It speaks the endpoints cutover uses with Vercel's JSON and error shapes, keeps which
deployment production serves (vercel_state.py), can follow the Hobby plan's rollback rule,
and can inject faults.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cutover.demo.loopback import KEPT_REQUESTS, JSONHandler, Loopback
from cutover.demo.vercel_state import GIT_FIELDS, Deployment, Env, Project, new_sha

# Kept under their old names: benches and tests reach into the fake's world.
_Deployment, _Env, _Project = Deployment, Env, Project


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it; the Authorization header is never kept."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float  # time.monotonic()


@dataclass(frozen=True)
class _Fault:
    status: int
    code: str
    message: str
    retry_after: float | None
    method: str | None = None  # only requests with this method, when set
    path_prefix: str = ""  # only requests under this path
    delay: float = 0.0  # seconds the answer takes (a request stalled on the way)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path_prefix)


HOBBY_REFUSAL = (
    "Hobby plan: you can only roll back to the previous production deployment. To roll back "
    "further than the previous production deployment, upgrade to Pro"
)


class FakeVercel:
    """Start with `FakeVercel(token=…, project=…, key=…, initial_value="0")`, then `.start()`
    (or `with`); point clients at `.url`.

    Knobs: `build_seconds` (every new build), `fail_builds` (every build ends ERROR),
    `next_deployment_fails` (the next one does), `hobby` (Instant Rollback only to the
    immediately previous production deployment), `slow_seconds` (every answer)."""

    def __init__(
        self,
        *,
        token: str,
        project: str = "soulprint-landing",
        key: str = "V2_ROLLOUT_PERCENT",
        initial_value: str = "0",
        team_id: str | None = None,
        build_seconds: float = 1.0,
        hobby: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.token = token
        self.team_id = team_id
        self.build_seconds = build_seconds
        self.hobby = hobby
        self.slow_seconds = 0.0
        self.next_deployment_fails = False
        self.fail_builds = False
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._requests: deque[Recorded] = deque(maxlen=KEPT_REQUESTS)
        self._last_ms = 0
        self._loop = Loopback("fake-vercel", host, port)
        # The starting world: the var set two hours ago, the live build one hour ago.
        now = self._now_ms()
        self.project = Project(id="prj_" + secrets.token_hex(12), name=project)
        self.project.envs.append(
            Env(
                id=_new_id(),
                key=key,
                value=initial_value,
                target=["production"],
                created_at=now - 7_200_000,
                updated_at=now - 7_200_000,
            )
        )
        first = Deployment(
            uid="dpl_" + secrets.token_hex(12),
            name=project,
            project_id=self.project.id,
            target="production",
            created_at=now - 3_600_000,
            started=time.monotonic() - 3600,
            build_seconds=0,
            fails=False,
            meta=_git(new_sha(), "Initial import pipeline"),
            env={key: initial_value},
        )
        self.project.deployments.append(first)
        self.project.settle(time.monotonic())

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeVercel:
        self._loop.start(_Handler, fake=self)
        return self

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> FakeVercel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._loop.url

    # -- what tests and the demo look at ----------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def finish_builds(self) -> None:
        """Every build in progress ends now: a test holds a deployment in BUILDING with a
        long build_seconds, then releases it exactly when it has seen what it waits for."""
        with self._lock:
            for deployment in self.project.deployments:
                deployment.build_seconds = min(
                    deployment.build_seconds, time.monotonic() - deployment.started
                )

    def fail_next(
        self,
        status: int,
        code: str,
        message: str,
        times: int = 1,
        retry_after: float | None = None,
        *,
        method: str | None = None,
        path_prefix: str = "",
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests (those matching `method`/`path_prefix`, when
        given) with this error, after `delay` seconds (the request is not carried out)."""
        fault = _Fault(status, code, message, retry_after, method, path_prefix, delay)
        with self._lock:
            self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def env_value(self, key: str, target: str = "production") -> str | None:
        with self._lock:
            env = self._env_for(key, target)
            return None if env is None else env.value

    def live_value(self, project: str, key: str) -> str | None:
        """The value the deployment production serves was built with: what traffic sees."""
        with self._lock:
            if project not in (self.project.id, self.project.name):
                return None
            live = self.project.production(time.monotonic())
            return None if live is None else live.env.get(key)

    @property
    def production_id(self) -> str | None:
        """The deployment production serves now."""
        with self._lock:
            live = self.project.production(time.monotonic())
            return None if live is None else live.uid

    @property
    def pinned(self) -> bool:
        with self._lock:
            self.project.settle(time.monotonic())
            return self.project.pinned

    def knobs(self) -> dict[str, Any]:
        """What the demo's control surface shows: the knobs and what production serves."""
        with self._lock:
            live = self.project.production(time.monotonic())
            return {
                "build_seconds": self.build_seconds,
                "fail_builds": self.fail_builds,
                "hobby": self.hobby,
                "production": None
                if live is None
                else {"id": live.uid, "carries": dict(live.env), "pinned": self.project.pinned},
            }

    def add_env(self, key: str, value: str, target: list[str] | None = None) -> str:
        """Another env entry (e.g. the same key for preview); returns its id."""
        with self._lock:
            now = self._now_ms()
            env = Env(_new_id(), key, value, list(target or ["production"]), now, now)
            self.project.envs.append(env)
            return env.id

    def push(self, message: str, sha: str | None = None) -> str:
        """A git push to the production branch: a new production build of a new commit,
        with the values stored now; it serves once READY unless production is pinned.
        Returns its id."""
        with self._lock:
            deployment = self._build(_git(sha or new_sha(), message), time.monotonic())
            return deployment.uid

    # -- internals (call with the lock held) ------------------------------------------------

    def _now_ms(self) -> int:
        # Strictly increasing, so "deployment created after the env change" is never a tie.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _env_for(self, key: str, target: str) -> Env | None:
        for env in self.project.envs:
            if env.key == key and target in env.target:
                return env
        return None

    def _build(self, meta: dict[str, Any], now: float, target: str = "production") -> Deployment:
        # A build takes the env values stored right now, which is why a redeploy is needed.
        env = {e.key: e.value for e in self.project.envs if target in e.target}
        deployment = Deployment(
            uid="dpl_" + secrets.token_hex(12),
            name=self.project.name,
            project_id=self.project.id,
            target=target,
            created_at=self._now_ms(),
            started=now,
            build_seconds=self.build_seconds,
            fails=self.next_deployment_fails or self.fail_builds,
            meta=meta,
            env=env,
        )
        self.next_deployment_fails = False
        self.project.deployments.append(deployment)
        return deployment

    def _handle(
        self, method: str, path: str, query: dict[str, str], body: Any, auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self._requests.append(Recorded(method, path, query, body, time.monotonic()))
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return fault.status, _err(fault.code, fault.message), headers
        if auth != f"Bearer {self.token}":
            return 401, _err("forbidden", "Not authorized"), {}
        if self.team_id is not None and query.get("teamId") != self.team_id:
            return 403, _err("forbidden", "You don't have permission to access this team"), {}
        with self._lock:
            return self._route(method, path.rstrip("/").split("/")[1:], query, body)

    def _route(
        self, method: str, parts: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = time.monotonic()
        match method, parts:
            case "GET", ["v9", "projects", p]:
                if not self._is_project(p):
                    return _project_missing(p)
                return 200, self._project_public(now), {}
            case "POST", ["v1", "projects", p, "rollback", dep_id]:
                if not self._is_project(p):
                    return _project_missing(p)
                return self._rollback(dep_id, now)
            case "POST", ["v10", "projects", p, "promote", dep_id]:
                if not self._is_project(p):
                    return _project_missing(p)
                return self._promote(dep_id, now)
            case "GET", ["v10", "projects", p, "env"]:
                if not self._is_project(p):
                    return _project_missing(p)
                return 200, {"envs": [e.listed() for e in self.project.envs]}, {}
            case "GET", ["v1", "projects", p, "env", env_id]:
                if not self._is_project(p):
                    return _project_missing(p)
                env = self._env_by_id(env_id)
                if env is None:
                    return 404, _err("not_found", f"Environment Variable {env_id} not found"), {}
                return 200, env.decrypted(), {}
            case "PATCH", ["v9", "projects", p, "env", env_id]:
                if not self._is_project(p):
                    return _project_missing(p)
                env = self._env_by_id(env_id)
                if env is None:
                    return 404, _err("not_found", f"Environment Variable {env_id} not found"), {}
                if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                    return 400, _err("bad_request", "Invalid request: `value` must be a string"), {}
                env.value = body["value"]
                env.updated_at = self._now_ms()
                return 200, env.listed(), {}
            case "GET", ["v6", "deployments"]:
                p = query.get("projectId", "")
                if p and not self._is_project(p):
                    return _project_missing(p)
                found = [
                    d
                    for d in self.project.deployments
                    if d.target == query.get("target", d.target)
                    and d.ready_state(now) == query.get("state", d.ready_state(now))
                ]
                found.sort(key=lambda d: d.created_at, reverse=True)
                limit = int(query.get("limit", "20") or 20)
                return (
                    200,
                    {
                        "deployments": [d.public(now) for d in found[:limit]],
                        "pagination": {"count": min(limit, len(found)), "next": None, "prev": None},
                    },
                    {},
                )
            case "POST", ["v13", "deployments"]:
                return self._redeploy(body, now)
            case "GET", ["v13", "deployments", dep_id]:
                found_one = self.project.deployment(dep_id)
                if found_one is not None:
                    return 200, found_one.public(now), {}
                return 404, _err("not_found", "Deployment not found"), {}
        return (
            404,
            _err("not_found", f"The requested path {method} /{'/'.join(parts)} is not served here"),
            {},
        )

    def _project_public(self, now: float) -> dict[str, Any]:
        live = self.project.production(now)
        targets = {}
        if live is not None:
            targets["production"] = {**live.public(now), "readyAt": live.public(now).get("ready")}
        return {
            "id": self.project.id,
            "name": self.project.name,
            "targets": targets,
            "lastRollbackTarget": self.project.last_rollback if self.project.pinned else None,
        }

    def _rollback(self, dep_id: str, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Instant Rollback: production serves an earlier production deployment, no build;
        new production builds stop going live until one is promoted."""
        target = self.project.deployment(dep_id)
        if target is None:
            return 404, _err("not_found", "Deployment not found"), {}
        live = self.project.production(now)
        if target.target != "production" or target.ready_state(now) != "READY":
            return 400, _err("bad_request", "Only a READY production deployment"), {}
        if dep_id not in self.project.served:
            return (
                422,
                _err("invalid_rollback", "The deployment has never served production"),
                {},
            )
        if live is not None and live.uid == dep_id:
            return 409, _err("conflict", "The deployment is already the current production"), {}
        if self.hobby and dep_id != self.project.previous_production(now):
            return 402, _err("plan_limit", HOBBY_REFUSAL), {}
        self.project.serve(dep_id, now, pinned=True)
        self.project.last_rollback = {
            "fromDeploymentId": live.uid if live else None,
            "toDeploymentId": dep_id,
            "jobStatus": "succeeded",
            "requestedAt": self._now_ms(),
        }
        return 201, {}, {}

    def _promote(self, dep_id: str, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Promote: production serves this deployment (no rebuild) and follows new builds
        again."""
        target = self.project.deployment(dep_id)
        if target is None:
            return 404, _err("not_found", "Deployment not found"), {}
        if target.ready_state(now) != "READY":
            return 400, _err("bad_request", "The deployment is not READY"), {}
        self.project.serve(dep_id, now, pinned=False)
        return 201, {}, {}

    def _redeploy(self, body: Any, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not isinstance(body, dict) or not body.get("deploymentId"):
            return 400, _err("bad_request", "Invalid request: missing `deploymentId`"), {}
        source = self.project.deployment(body["deploymentId"])
        if source is None:
            return 404, _err("not_found", "Deployment not found"), {}
        if body.get("name") not in (self.project.name, self.project.id):
            return 400, _err("bad_request", "Invalid request: `name` is not this project"), {}
        # The same commit as the source (a redeploy builds the same code), with what is
        # stored now.
        meta = {k: v for k, v in source.meta.items() if k in GIT_FIELDS}
        meta.update(body.get("meta") or {})
        deployment = self._build(meta, now, body.get("target") or "preview")
        return 200, deployment.public(now), {}

    def _is_project(self, p: str) -> bool:
        return p in (self.project.id, self.project.name)

    def _env_by_id(self, env_id: str) -> Env | None:
        return next((e for e in self.project.envs if e.id == env_id), None)


class _Handler(JSONHandler):
    server_version = "fake-vercel"

    def _serve(self) -> None:
        fake: FakeVercel = self.server.fake  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        status, payload, headers = fake._handle(
            self.command, split.path, query, body, self.headers.get("Authorization")
        )
        if fake.slow_seconds:
            time.sleep(fake.slow_seconds)
        self.send_json(status, payload, headers)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


def _err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _project_missing(p: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 404, _err("not_found", f"Project not found: {p}"), {}


def _git(sha: str, message: str) -> dict[str, Any]:
    return {"githubCommitSha": sha, "githubCommitMessage": message, "githubCommitRef": "main"}


def _new_id() -> str:
    return secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
