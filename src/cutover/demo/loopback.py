"""One stdlib HTTP server on loopback, served from a daemon thread: what the demo's fake
Vercel, RLM and control surface each run on."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JSONHandler(BaseHTTPRequestHandler):
    """What the three demo servers' handlers share: read the body, answer JSON, print
    nothing (stderr belongs to the console; requests are recorded where they are wanted)."""

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        indent: int | None = None,
    ) -> None:
        data = (json.dumps(payload, indent=indent) + ("\n" if indent else "")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a probe or a test timing out): nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        pass


# What a fake service remembers of the requests it served: the latest, for tests and the
# demo's knobs. A demo or a bench left running for days must not grow with every request.
KEPT_REQUESTS = 1_000


class Loopback:
    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0):
        self.name = name
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, handler: type[BaseHTTPRequestHandler], **attach: Any) -> None:
        """Serve `handler`; `attach` become attributes of the server its requests can reach
        (`self.server.fake`, say)."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running")
        server = ThreadingHTTPServer(self._address, handler)
        server.daemon_threads = True  # a slow handler must never keep the process alive
        for name, value in attach.items():
            setattr(server, name, value)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"
