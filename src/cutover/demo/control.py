"""The demo's control surface on loopback, so a second shell can break things on purpose:

    curl -d '{"v2_failure_rate": 0.2}' $CUTOVER_DEMO_CONTROL_URL/knobs
    curl -d '{"seconds": 15}' $CUTOVER_DEMO_CONTROL_URL/database/outage
    curl -d '{"v1_removed": true}' $CUTOVER_DEMO_CONTROL_URL/rlm
    curl -d '{"memory_bytes": 1900000000}' $CUTOVER_DEMO_CONTROL_URL/render
    curl -d '{"build_seconds": 5}' $CUTOVER_DEMO_CONTROL_URL/vercel

On the demo's clock (an hour a second, demo/clock.py) the 24-hour gates weigh the last
24 s: {"v2_failure_rate": 1} at the canary's 10 % fires the success-rate trigger in about
15 s, and mended, the failures leave the window as fast. `rate` is imports per real minute
(`cutover demo` starts at 6000: 100 an hour of the world's time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, get_args

from cutover.demo.loopback import JSONHandler, Loopback
from cutover.demo.render import FakeRender
from cutover.demo.rlm import DeprecationStyle, RLMServer
from cutover.demo.traffic import Traffic
from cutover.demo.vercel_api import FakeVercel

USAGE = {
    "GET /knobs": "the traffic knobs and the simulator's status",
    "POST /knobs": 'change knobs, e.g. {"v2_failure_rate": 0.2, "rate": 600}',
    "POST /database/outage": 'take Postgres down and back, e.g. {"seconds": 15}',
    "GET /rlm": "the RLM service's switches",
    "POST /rlm": 'flip them, e.g. {"v1_removed": true} (the last stage) or '
    '{"processors_available": false}',
    "GET /render": "the fake Render's memory knob",
    "POST /render": 'set the RLM memory Render reports, e.g. {"memory_bytes": 1900000000} '
    "(past the runbook's memory trigger)",
    "GET /vercel": "the loopback Vercel's knobs, and the deployment production serves",
    "POST /vercel": 'change them, e.g. {"build_seconds": 5}, {"hobby": true} (instant rollback '
    'only to the previous production deployment) or {"fail_builds": true}',
}
# What a second shell may change on the loopback Vercel, and the type each takes.
VERCEL_KNOBS = {"build_seconds": (int, float), "hobby": bool, "fail_builds": bool}
# What a second shell may flip on the fake RLM, and the type each takes.
RLM_SWITCHES = {
    "processors_available": bool,
    "health_status": int,
    "v1_removed": bool,
    "deprecation_style": str,
}


class ControlServer:
    """`start()`, then `.url`; `stop()` closes the port."""

    def __init__(
        self,
        traffic: Traffic,
        *,
        outage: Callable[[float], None] | None = None,
        rlm: RLMServer | None = None,
        render: FakeRender | None = None,
        vercel: FakeVercel | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.traffic = traffic
        self.outage = outage
        self.rlm = rlm
        self.render = render
        self.vercel = vercel
        self._loop = Loopback("demo-control", host, port)

    def start(self) -> ControlServer:
        self._loop.start(_Handler, control=self)
        return self

    def stop(self) -> None:
        self._loop.stop()

    @property
    def url(self) -> str:
        return self._loop.url

    def handle(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        path = path.split("?")[0].rstrip("/")
        if path == "/knobs" and method == "GET":
            return 200, self._knobs()
        if path == "/knobs" and method == "POST":
            if not isinstance(body, dict):
                return 400, {"error": 'send a JSON object, e.g. {"v2_failure_rate": 0.2}'}
            try:
                self.traffic.set_knobs(**body)
            except ValueError as exc:
                return 400, {"error": str(exc)}
            return 200, self._knobs()
        if path == "/database/outage" and method == "POST":
            return self._outage(body)
        if path == "/rlm" and self.rlm is not None:
            return self._rlm(method, body)
        if path == "/render" and self.render is not None:
            return self._render(method, body)
        if path == "/vercel" and self.vercel is not None:
            return self._vercel(method, body)
        return 404, {"error": f"no {method} {path} here", "usage": USAGE}

    def _knobs(self) -> dict[str, Any]:
        return {"knobs": self.traffic.knobs.as_dict(), "traffic": self.traffic.status()}

    def _rlm(self, method: str, body: Any) -> tuple[int, dict[str, Any]]:
        assert self.rlm is not None
        if method == "POST":
            if not isinstance(body, dict):
                return 400, {"error": 'send a JSON object, e.g. {"v1_removed": true}'}
            for name, value in body.items():
                kind = RLM_SWITCHES.get(name)
                if name == "deprecation_style" and value not in get_args(DeprecationStyle):
                    styles = ", ".join(get_args(DeprecationStyle))
                    return 400, {"error": f"deprecation_style is one of {styles}"}
                if kind is None or type(value) is not kind:
                    known = ", ".join(f"{k} ({t.__name__})" for k, t in RLM_SWITCHES.items())
                    return 400, {"error": f"{name!r}: the switches are {known}"}
            for name, value in body.items():
                setattr(self.rlm, name, value)
        switches = self.rlm.switches()
        return 200, {name: switches[name] for name in RLM_SWITCHES}

    def _render(self, method: str, body: Any) -> tuple[int, dict[str, Any]]:
        assert self.render is not None
        if method == "POST":
            if not isinstance(body, dict) or set(body) != {"memory_bytes"}:
                return 400, {"error": 'send {"memory_bytes": N}, N bytes ≥ 0'}
            try:
                self.render.memory_bytes = body["memory_bytes"]
            except ValueError as exc:
                return 400, {"error": str(exc)}
        return 200, {"memory_bytes": self.render.memory_bytes}

    def _vercel(self, method: str, body: Any) -> tuple[int, dict[str, Any]]:
        assert self.vercel is not None
        if method == "POST":
            if not isinstance(body, dict):
                return 400, {"error": 'send a JSON object, e.g. {"build_seconds": 5}'}
            for name, value in body.items():
                kind = VERCEL_KNOBS.get(name)
                wrong = kind is None or isinstance(value, bool) != (kind is bool)
                if wrong or not isinstance(value, kind) or (kind is not bool and value < 0):
                    known = ", ".join(VERCEL_KNOBS)
                    return 400, {"error": f"{name!r}: the knobs are {known} (seconds ≥ 0)"}
            for name, value in body.items():
                setattr(self.vercel, name, float(value) if name == "build_seconds" else value)
        return 200, self.vercel.knobs()

    def _outage(self, body: Any) -> tuple[int, dict[str, Any]]:
        if self.outage is None:
            return 404, {"error": "this world has no database to take down"}
        seconds = body.get("seconds", 10) if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return 400, {"error": 'send {"seconds": N} with N ≥ 0'}
        # Answer now; the outage runs on its own so the caller's curl does not hang through it.
        threading.Thread(target=self.outage, args=(float(seconds),), daemon=True).start()
        return 202, {"outage_seconds": seconds}


class _Handler(JSONHandler):
    server_version = "cutover-demo-control"

    def _serve(self) -> None:
        control: ControlServer = self.server.control  # type: ignore[attr-defined]
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            status, payload = 400, {"error": "the body is not JSON"}
        else:
            status, payload = control.handle(self.command, self.path, body)
        self.send_json(status, payload, indent=2)  # read by people, with curl

    do_GET = do_POST = _serve
