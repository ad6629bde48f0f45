"""A Render-API-compatible server on loopback: the metrics API's memory series (with a
memory knob) and the logs API (serving the fake RLM's log lines), behind a Bearer key, in
the shapes the real API answers, so the runbook's http queries read it unchanged."""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cutover.demo.loopback import KEPT_REQUESTS, JSONHandler, Loopback

MEMORY_PATH, LOGS_PATH = "/v1/metrics/memory", "/v1/logs"
HEALTHY_MEMORY_BYTES = 640_000_000  # an RLM idling on a 2 GB plan
MAX_LOG_LIMIT = 100

LogSource = Callable[[], "tuple[tuple[datetime, str], ...]"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorized: bool


class FakeRender:
    """`start()` (or `with FakeRender(...) as render:`), then `.url`.

    Knob: `memory_bytes`, what the memory metric reads now on every instance (set it from
    any thread; the control surface's POST /render does), or `set_instance_memory(i, N)`
    for one of `instances`. As the real metrics API does for memory (it has no
    aggregationMethod), it answers one series per instance. `logs` is where log lines come
    from (the fake RLM's `log_lines`)."""

    def __init__(
        self,
        *,
        api_key: str,
        owner_id: str = "tea-demo",
        service_id: str = "srv-demo-rlm",
        logs: LogSource | None = None,
        instances: int = 1,
        clock: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        # The demo's clock (demo/clock.py): a log line a second old reads as an hour old, so
        # "the last hour" of logs passes as the database's windows and the holds do.
        self.clock = clock
        self.owner_id = owner_id
        self.service_id = service_id
        self.logs = logs or (lambda: ())
        self._lock = threading.Lock()
        if instances < 1:
            raise ValueError("a service runs at least one instance")
        # Per instance, when its memory was set to what: the series shows each change.
        start = datetime.now(UTC)
        self._history: list[list[tuple[datetime, float]]] = [
            [(start, float(HEALTHY_MEMORY_BYTES))] for _ in range(instances)
        ]
        self._requests: deque[RecordedRequest] = deque(maxlen=KEPT_REQUESTS)
        self._loop = Loopback("render", host, port)

    # -- the knob

    @property
    def memory_bytes(self) -> float:
        """The busiest instance's memory now."""
        with self._lock:
            return max(history[-1][1] for history in self._history)

    @memory_bytes.setter
    def memory_bytes(self, value: float) -> None:
        for index in range(len(self._history)):
            self.set_instance_memory(index, value)

    def set_instance_memory(self, index: int, value: float) -> None:
        """One instance's memory from now on (0-based)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError("memory_bytes is a number of bytes, at least 0")
        with self._lock:
            self._history[index].append((datetime.now(UTC), float(value)))

    # -- lifecycle

    def start(self) -> FakeRender:
        self._loop.start(_Handler, render=self)
        return self

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> FakeRender:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._loop.url

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        with self._lock:
            return tuple(self._requests)

    # -- answers

    def handle(
        self, method: str, target: str, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        authorized = authorization == f"Bearer {self.api_key}"
        with self._lock:
            self._requests.append(RecordedRequest(method, parts.path, query, authorized))
        if not authorized:
            return 401, {"id": "unauthorized", "message": "Unauthorized"}, {}
        if method != "GET":
            return 405, {"id": "method_not_allowed", "message": "Method Not Allowed"}, {}
        now = datetime.now(UTC)
        try:
            if parts.path == MEMORY_PATH:
                return 200, self._memory_series(query, now), {}
            if parts.path == LOGS_PATH:
                return 200, self._log_page(query, now), {}
        except ValueError as exc:
            return 400, {"id": "bad_request", "message": str(exc)}, {}
        return 404, {"id": "not_found", "message": "Unable to find the requested resource."}, {}

    def _memory_series(self, query: dict[str, list[str]], now: datetime) -> list[dict]:
        start, end = _window(query, now)
        step = int(_one(query, "resolutionSeconds") or 60)
        if step < 30:
            raise ValueError("resolutionSeconds must be at least 30")
        if self.service_id not in query.get("resource", []):
            return []  # Render answers an empty list for a resource it has no data for
        with self._lock:
            histories = [list(history) for history in self._history]
        out = []
        for number, history in enumerate(histories, start=1):
            values = []
            at = end
            while at > start and len(values) < 1440:
                value = next((v for t, v in reversed(history) if t <= at), history[0][1])
                stamp = at.isoformat().replace("+00:00", "Z")
                values.append({"timestamp": stamp, "value": value})
                at -= timedelta(seconds=step)
            values.reverse()
            labels = [
                {"field": "resource", "value": self.service_id},
                {"field": "instance", "value": f"{self.service_id}-demo{number}"},
            ]
            out.append({"labels": labels, "values": values, "unit": "bytes"})
        return out

    def _log_page(self, query: dict[str, list[str]], now: datetime) -> dict:
        if _one(query, "ownerId") != self.owner_id:
            raise ValueError("ownerId is required and must be the workspace's id")
        if self.service_id not in query.get("resource", []):
            raise ValueError("resource is required")
        start, end = _window(query, now)
        limit = int(_one(query, "limit") or 20)
        if not 1 <= limit <= MAX_LOG_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LOG_LIMIT}")
        texts = query.get("text", [])
        scale = self.clock or 1.0
        lines = [
            (now - (now - at) * scale, message)
            for at, message in self.logs()
            if start <= now - (now - at) * scale <= end and all(t in message for t in texts)
        ]
        lines.sort(reverse=_one(query, "direction") != "forward")
        page, more = lines[:limit], len(lines) > limit
        logs = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{at.isoformat()}{i}")),
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "message": message,
                "labels": [
                    {"name": "resource", "value": self.service_id},
                    {"name": "instance", "value": f"{self.service_id}-demo1"},
                    {"name": "level", "value": "info"},
                    {"name": "type", "value": "app"},
                ],
            }
            for i, (at, message) in enumerate(page)
        ]
        body: dict[str, Any] = {"hasMore": more, "logs": logs}
        if more:
            last = page[-1][0]
            body["nextStartTime"] = start.isoformat().replace("+00:00", "Z")
            body["nextEndTime"] = last.isoformat().replace("+00:00", "Z")
        return body


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _window(query: dict[str, list[str]], now: datetime) -> tuple[datetime, datetime]:
    """startTime/endTime as Render reads them: epoch seconds or RFC 3339, by default the
    last hour."""

    def parse(name: str, default: datetime) -> datetime:
        raw = _one(query, name)
        if not raw:
            return default
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be a timestamp") from None

    end = parse("endTime", now)
    return parse("startTime", end - timedelta(hours=1)), end


class _Handler(JSONHandler):
    server_version = "fake-render"

    def _serve(self) -> None:
        render: FakeRender = self.server.render  # type: ignore[attr-defined]
        self.read_body()
        status, payload, headers = render.handle(
            self.command, self.path, self.headers.get("Authorization")
        )
        self.send_json(status, payload, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve
