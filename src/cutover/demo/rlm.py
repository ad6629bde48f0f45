"""An RLM-like service on loopback: /health, the deprecated v1 /process-full and v2.
Switches change its behaviour while it runs, so tests and the demo can break it on purpose."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

from cutover.demo.loopback import KEPT_REQUESTS, JSONHandler, Loopback

DeprecationStyle = Literal["legacy", "http-date", "rfc9745", "none"]
# What /health answers: "original", the version the cutover was written for
# ({"status": "ok", "processors_available": …}); "later", the service's later versions
# ({"status": "ok", "service": "soulprint-rlm"}: no processors_available); "extended", the
# demo's richer answer (processor counts and a version) for probes of nested JSON.
HealthShape = Literal["original", "later", "extended"]

V1_PATH, V2_PATH, HEALTH_PATH = "/process-full", "/process-full-v2", "/health"
# What the real v1 handler logs on every call (the only trace of v1 traffic: the v1 path
# writes nothing to user_profiles).
V1_LOG_LINE = "[DEPRECATED] /process-full called"
# The fake Render serves the v1 log from these; a week of v1 traffic in the demo is far less.
V1_LOG_KEPT = 100_000


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...]
    body: bytes
    at: datetime
    v1_handled: bool = False  # reached the v1 handler (logged its deprecation line)


class RLMServer:
    """Start with `start()` or `with RLMServer() as rlm:`; `rlm.url` is the base URL.

    Switches (set them at any time, from any thread):
    processors_available, health_status, health_shape (see HealthShape), v1_removed,
    deprecation_style ("legacy" sends `Deprecation: true`, "rfc9745" `@<epoch>`,
    "http-date", "none"),
    deprecated_at, sunset_at (None: 30 days after each request), sunset_sent (False: no
    Sunset header), link (None: no Link header) and slow_seconds (delay before every
    response).
    """

    _SWITCHES = frozenset(
        {
            "processors_available",
            "health_status",
            "health_shape",
            "v1_removed",
            "deprecation_style",
            "deprecated_at",
            "sunset_at",
            "sunset_sent",
            "link",
            "slow_seconds",
        }
    )

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # The lock makes each request see one consistent set of switches, even when a
        # test flips several of them while a request is in flight.
        object.__setattr__(self, "_lock", threading.Lock())
        self.processors_available = True
        self.health_status = 200
        self.health_shape: HealthShape = "original"
        self.v1_removed = False
        self.deprecation_style: DeprecationStyle = "legacy"
        self.deprecated_at: datetime = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        self.sunset_at: datetime | None = None
        self.sunset_sent = True
        self.link: str | None = f'<{V2_PATH}>; rel="alternate"'
        self.slow_seconds = 0.0
        self._loop = Loopback("rlm", host, port)
        self._stopping = threading.Event()
        self._requests: deque[RecordedRequest] = deque(maxlen=KEPT_REQUESTS)
        # When the deprecated v1 handler ran: its log, as the fake Render serves it.
        self._v1_calls: deque[datetime] = deque(maxlen=V1_LOG_KEPT)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._SWITCHES:
            with self._lock:
                object.__setattr__(self, name, value)
        else:
            object.__setattr__(self, name, value)

    def switches(self) -> dict[str, Any]:
        with self._lock:
            return {name: getattr(self, name) for name in self._SWITCHES}

    # -- lifecycle

    def start(self) -> RLMServer:
        self._stopping.clear()
        self._loop.start(_handler_for(self))
        return self

    def stop(self) -> None:
        if not self._loop.running:
            return
        self._stopping.set()  # wakes handlers sleeping on slow_seconds
        self._loop.stop()

    def __enter__(self) -> RLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._loop.port

    @property
    def url(self) -> str:
        return self._loop.url

    # -- what it has seen

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        with self._lock:
            return tuple(self._requests)

    def hits(self, path: str, method: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if r.path.split("?")[0] == path and (method is None or r.method == method)
        )

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            v1 = request.path.split("?")[0] == V1_PATH and request.method == "POST"
            if v1 and request.v1_handled:
                self._v1_calls.append(request.at)

    # -- responses: (status, headers, body) from a snapshot of the switches

    def log_lines(self) -> tuple[tuple[datetime, str], ...]:
        """What the real service logs that the cutover reads: a line for each call of the
        deprecated v1 handler (a POST that got past validation). The fake Render serves
        these from its logs API."""
        with self._lock:
            return tuple((at, V1_LOG_LINE) for at in self._v1_calls)

    def _respond(
        self, method: str, path: str, now: datetime, body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        s = self.switches()
        route = path.split("?")[0]
        if route == HEALTH_PATH and method == "GET":
            return s["health_status"], {}, _health(s)
        if route == V1_PATH:
            if s["v1_removed"]:
                return 404, {}, {"detail": "Not Found"}
            # As in the real service: a POST-only FastAPI route whose handler sets the
            # deprecation headers itself (there is no middleware). A GET is refused by the
            # router before any handler runs (a bare 405), and so is a body the handler's
            # model rejects (422): only a POST of an import sees the headers.
            if method != "POST":
                return 405, {"Allow": "POST"}, {"detail": "Method Not Allowed"}
            missing = _missing_fields(body, ("user_id", "storage_path"))
            if missing:
                return (
                    422,
                    {},
                    {
                        "detail": [
                            {"loc": ["body", f], "msg": "Field required", "type": "missing"}
                            for f in missing
                        ]
                    },
                )
            return (
                200,
                _deprecation_headers(s, now),
                {
                    "status": "processing",
                    "deprecated": True,
                    "pipeline": "v1",
                    "use": V2_PATH,
                },
            )
        if route == V2_PATH and method == "POST":
            return 200, {}, {"ok": True, "pipeline": "v2"}
        if route in (HEALTH_PATH, V2_PATH):
            allow = {HEALTH_PATH: "GET", V2_PATH: "POST"}[route]
            return 405, {"Allow": allow}, {"detail": "Method Not Allowed"}
        return 404, {}, {"detail": "Not Found"}


def _health(s: dict[str, Any]) -> dict[str, Any]:
    """/health's body in the shape asked for."""
    up = s["health_status"] < 400
    if s["health_shape"] == "later":
        return {"status": "ok" if up else "error", "service": "soulprint-rlm"}
    if s["health_shape"] == "original":
        return {
            "status": "ok" if up else "error",
            "processors_available": s["processors_available"],
        }
    healthy = s["processors_available"] and up
    return {
        "status": "ok" if healthy else "degraded",
        "processors_available": s["processors_available"],
        "processors": {"total": 4, "busy": 1 if s["processors_available"] else 0},
        "version": "2.3.1",
    }


def _missing_fields(body: bytes, fields: tuple[str, ...]) -> list[str]:
    """The required fields a JSON body lacks (all of them when it is not a JSON object)."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return list(fields)
    return [f for f in fields if not isinstance(doc.get(f), str)]


def _deprecation_headers(s: dict[str, Any], now: datetime) -> dict[str, str]:
    headers: dict[str, str] = {}
    deprecated_at: datetime = s["deprecated_at"]
    style = s["deprecation_style"]
    if style == "legacy":
        headers["Deprecation"] = "true"
    elif style == "rfc9745":
        headers["Deprecation"] = f"@{int(deprecated_at.timestamp())}"
    elif style == "http-date":
        headers["Deprecation"] = format_datetime(deprecated_at.astimezone(UTC), usegmt=True)
    sunset = s["sunset_at"] or now + timedelta(days=30)
    if s["sunset_sent"]:
        stamp = sunset.astimezone(UTC).replace(microsecond=0)
        headers["Sunset"] = format_datetime(stamp, usegmt=True)
    if s["link"] is not None:
        headers["Link"] = s["link"]
    return headers


def _handler_for(rlm: RLMServer) -> type[JSONHandler]:
    class Handler(JSONHandler):
        server_version = "fake-rlm/2.3"

        def _serve(self) -> None:
            body = self.read_body()
            now = datetime.now(UTC)
            delay = rlm.switches()["slow_seconds"]
            if delay and rlm._stopping.wait(delay):
                return  # stopping: drop the request rather than hold up shutdown
            status, headers, payload = rlm._respond(self.command, self.path, now, body)
            handled = self.path.split("?")[0] == V1_PATH and status == 200
            rlm._record(
                RecordedRequest(
                    self.command, self.path, tuple(self.headers.items()), body, now, handled
                )
            )
            self.send_json(status, payload, headers)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler
