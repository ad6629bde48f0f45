"""A local Vercel-compatible REST API (env vars, deployments, redeploys) for tests and the demo.

It speaks the endpoints cutover uses with Vercel's JSON and error shapes, and can inject faults.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cutover.demo.loopback import KEPT_REQUESTS, JSONHandler, Loopback


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

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path_prefix)


@dataclass
class _Env:
    id: str
    key: str
    value: str
    target: list[str]
    created_at: int
    updated_at: int
    type: str = "encrypted"

    def listed(self) -> dict[str, Any]:
        # The list endpoint returns encrypted values unless asked to decrypt, as Vercel does.
        return {
            "id": self.id,
            "key": self.key,
            "value": "enc:" + secrets.token_hex(8),
            "target": list(self.target),
            "type": self.type,
            "configurationId": None,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def decrypted(self) -> dict[str, Any]:
        return {**self.listed(), "value": self.value, "decrypted": True}


@dataclass
class _Deployment:
    uid: str
    name: str
    project_id: str
    target: str
    created_at: int
    started: float  # time.monotonic() when created
    build_seconds: float
    fails: bool
    meta: dict[str, Any]
    env: dict[str, str]  # the values it was built with

    def ready_state(self, now: float) -> str:
        age = now - self.started
        if age < self.build_seconds * 0.25:
            return "QUEUED"
        if age < self.build_seconds:
            return "BUILDING"
        return "ERROR" if self.fails else "READY"

    def public(self, now: float) -> dict[str, Any]:
        state = self.ready_state(now)
        return {
            "id": self.uid,
            "uid": self.uid,
            "name": self.name,
            "projectId": self.project_id,
            "url": f"{self.name}-{self.uid[4:12]}.vercel.app",
            "target": self.target,
            "readyState": state,
            "state": state,
            "createdAt": self.created_at,
            "created": self.created_at,
            "meta": dict(self.meta),
        }


@dataclass
class _Project:
    id: str
    name: str
    envs: list[_Env] = field(default_factory=list)
    deployments: list[_Deployment] = field(default_factory=list)  # oldest first


class FakeVercel:
    """Start with `FakeVercel(token=…, project=…, key=…, initial_value="0")`, then `.start()`
    (or `with`); point clients at `.url`."""

    def __init__(
        self,
        *,
        token: str,
        project: str = "soulprint-landing",
        key: str = "V2_ROLLOUT_PERCENT",
        initial_value: str = "0",
        team_id: str | None = None,
        build_seconds: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.token = token
        self.team_id = team_id
        self.build_seconds = build_seconds
        self.slow_seconds = 0.0
        self.next_deployment_fails = False
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._requests: deque[Recorded] = deque(maxlen=KEPT_REQUESTS)
        self._last_ms = 0
        self._loop = Loopback("fake-vercel", host, port)
        # The starting world: the var set two hours ago, the live build one hour ago.
        now = self._now_ms()
        self.project = _Project(id="prj_" + secrets.token_hex(12), name=project)
        self.project.envs.append(
            _Env(
                id=_new_id(),
                key=key,
                value=initial_value,
                target=["production"],
                created_at=now - 7_200_000,
                updated_at=now - 7_200_000,
            )
        )
        self.project.deployments.append(
            _Deployment(
                uid="dpl_" + secrets.token_hex(12),
                name=project,
                project_id=self.project.id,
                target="production",
                created_at=now - 3_600_000,
                started=time.monotonic() - 3600,
                build_seconds=0,
                fails=False,
                meta={},
                env={key: initial_value},
            )
        )

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
                deployment.build_seconds = 0

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
    ) -> None:
        """Answer the next `times` requests (those matching `method`/`path_prefix`, when
        given) with this error."""
        fault = _Fault(status, code, message, retry_after, method, path_prefix)
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
        """The value the newest READY production deployment was built with: what traffic sees."""
        with self._lock:
            if project not in (self.project.id, self.project.name):
                return None
            live = self._live(time.monotonic())
            return None if live is None else live.env.get(key)

    def add_env(self, key: str, value: str, target: list[str] | None = None) -> str:
        """Another env entry (e.g. the same key for preview); returns its id."""
        with self._lock:
            now = self._now_ms()
            env = _Env(_new_id(), key, value, list(target or ["production"]), now, now)
            self.project.envs.append(env)
            return env.id

    # -- internals (call with the lock held) ------------------------------------------------

    def _now_ms(self) -> int:
        # Strictly increasing, so "deployment created after the env change" is never a tie.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _env_for(self, key: str, target: str) -> _Env | None:
        for env in self.project.envs:
            if env.key == key and target in env.target:
                return env
        return None

    def _live(self, now: float) -> _Deployment | None:
        ready = [
            d
            for d in self.project.deployments
            if d.target == "production" and d.ready_state(now) == "READY"
        ]
        return max(ready, key=lambda d: d.created_at, default=None)

    def _handle(
        self, method: str, path: str, query: dict[str, str], body: Any, auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self._requests.append(Recorded(method, path, query, body, time.monotonic()))
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None:
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
                for d in self.project.deployments:
                    if d.uid == dep_id:
                        return 200, d.public(now), {}
                return 404, _err("not_found", "Deployment not found"), {}
        return (
            404,
            _err("not_found", f"The requested path {method} /{'/'.join(parts)} is not served here"),
            {},
        )

    def _redeploy(self, body: Any, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not isinstance(body, dict) or not body.get("deploymentId"):
            return 400, _err("bad_request", "Invalid request: missing `deploymentId`"), {}
        source = next((d for d in self.project.deployments if d.uid == body["deploymentId"]), None)
        if source is None:
            return 404, _err("not_found", "Deployment not found"), {}
        if body.get("name") not in (self.project.name, self.project.id):
            return 400, _err("bad_request", "Invalid request: `name` is not this project"), {}
        target = body.get("target") or "preview"
        # A build takes the env values stored right now, which is why a redeploy is needed.
        env = {e.key: e.value for e in self.project.envs if target in e.target}
        deployment = _Deployment(
            uid="dpl_" + secrets.token_hex(12),
            name=source.name,
            project_id=self.project.id,
            target=target,
            created_at=self._now_ms(),
            started=now,
            build_seconds=self.build_seconds,
            fails=self.next_deployment_fails,
            meta=dict(body.get("meta") or {}),
            env=env,
        )
        self.next_deployment_fails = False
        self.project.deployments.append(deployment)
        return 200, deployment.public(now), {}

    def _is_project(self, p: str) -> bool:
        return p in (self.project.id, self.project.name)

    def _env_by_id(self, env_id: str) -> _Env | None:
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


def _new_id() -> str:
    return secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
