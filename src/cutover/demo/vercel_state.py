"""What the loopback Vercel keeps: a project's env vars, its deployments (immutable, each
built with the values stored when it was created) and which of them production serves.

Production follows the newest READY production build, as on Vercel, until an Instant
Rollback pins it to an earlier deployment; a promote un-pins it. Time is the monotonic
clock: a build is QUEUED, then BUILDING, then READY (or ERROR) by its age, and production
is brought up to date lazily, whenever anyone looks (`Project.settle`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

# The git metadata Vercel keeps on a deployment built from a GitHub push.
GIT_FIELDS = ("githubCommitSha", "githubCommitMessage", "githubCommitRef")


def new_sha() -> str:
    return secrets.token_hex(20)


@dataclass
class Env:
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
class Deployment:
    uid: str
    name: str
    project_id: str
    target: str
    created_at: int  # ms epoch
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

    @property
    def ends(self) -> float:
        """When (monotonic) its build ends."""
        return self.started + self.build_seconds

    def public(self, now: float) -> dict[str, Any]:
        state = self.ready_state(now)
        out = {
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
        if state == "READY":
            out["ready"] = self.created_at + int(self.build_seconds * 1000)
        return out


@dataclass
class Project:
    id: str
    name: str
    envs: list[Env] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)  # oldest first
    # Every deployment that has served production, in the order it began to: the last one
    # serves now. A deployment may appear more than once (rolled back to, promoted again).
    served: list[str] = field(default_factory=list)
    pinned: bool = False  # an Instant Rollback stopped production following new builds
    last_rollback: dict[str, Any] | None = None
    _ended: set[str] = field(default_factory=set)  # builds already looked at by settle

    def deployment(self, uid: str) -> Deployment | None:
        return next((d for d in self.deployments if d.uid == uid), None)

    def settle(self, now: float) -> None:
        """Bring production up to date: each production build that ended READY since the
        last look begins to serve, in the order the builds ended, unless production is
        pinned."""
        ended = [
            d
            for d in self.deployments
            if d.uid not in self._ended and d.ready_state(now) in ("READY", "ERROR")
        ]
        for d in sorted(ended, key=lambda d: d.ends):
            self._ended.add(d.uid)
            if d.target == "production" and d.ready_state(now) == "READY" and not self.pinned:
                self.served.append(d.uid)

    def production(self, now: float) -> Deployment | None:
        self.settle(now)
        return self.deployment(self.served[-1]) if self.served else None

    def previous_production(self, now: float) -> str | None:
        """The deployment that served production immediately before the one serving now."""
        current = self.production(now)
        for uid in reversed(self.served):
            if current is None or uid != current.uid:
                return uid
        return None

    def serve(self, uid: str, now: float, *, pinned: bool) -> None:
        """Production serves `uid` from now (a rollback pins it, a promote un-pins it);
        builds that ended before this serve as they would have, ones still building serve
        when they end only if production is not pinned then."""
        self.settle(now)
        self.served.append(uid)
        self.pinned = pinned
