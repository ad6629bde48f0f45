"""What the watcher tests share: a runbook derived from the shipped one (its queries and
triggers, a canary that arms auto_rollback, a webhook), a real webhook receiver on loopback,
and `cutover watch` as a real subprocess whose lines a test waits for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "runbook.toml"
HOOK_ENV = "CUTOVER_WATCH_HOOK"
# The path of a Slack incoming webhook is its secret.
HOOK_SECRET = "T0WATCH/B0WATCH/s3cretHookPath9f2c"


def watch_runbook(
    folder: Path,
    *,
    refresh: str = "2s",
    auto_rollback: bool = True,
    notify: bool = True,
    canary_percent: int = 50,
) -> Path:
    """A source runbook for the demo world: the shipped queries (every one refreshed every
    `refresh`) and triggers, an `off` stage at 0 % with nothing to wait for, and a canary
    at `canary_percent` with the shipped gates that arms auto_rollback on the success-rate
    trigger. Query files point at the shipped ones."""
    data: dict[str, Any] = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    for query in data["queries"].values():
        query["file"] = str((REPO / query["file"]).resolve())
        query["refresh"] = refresh
    shipped_canary = next(s for s in data["stages"] if s["id"] == "canary")
    canary: dict[str, Any] = {
        "id": "canary",
        "title": "Canary",
        "percent": canary_percent,
        "hold": "24h",
        "checkpoint": "12h",
        "gates": shipped_canary["gates"],
    }
    if auto_rollback:
        canary["auto_rollback"] = ["success_below_95"]
    data["stages"] = [{"id": "off", "title": "Off", "percent": 0, "hold": "0s"}, canary]
    if notify:
        data["notify"] = [{"kind": "webhook", "url_env": HOOK_ENV}]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "source-runbook.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


class Receiver:
    """A Slack-compatible incoming webhook on loopback: records each posted `text`. `down`
    makes it answer 500; `stop()` closes the port."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.down = False
        self.posts = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.posts += 1
                    down = receiver.down
                    if not down and self.path == f"/services/{HOOK_SECRET}":
                        receiver.texts.append(json.loads(body)["text"])
                self.send_response(500 if down else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/services/{HOOK_SECRET}"

    def received(self) -> str:
        with self._lock:
            return "\n".join(self.texts)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


class WatchProcess:
    """`cutover watch` in its own process, its output in a file the test reads as it goes."""

    def __init__(self, runbook: Path, env: dict[str, str], log: Path, *args: str):
        self.log = log
        self._out = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), "watch", *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=runbook.parent,
        )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_for(self, text: str, timeout: float = 60.0, after: int = 0) -> str:
        """The first line (of those after the `after`-th) holding `text`; fails naming
        what the watcher said instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.output.splitlines()[after:]
            for line in lines:
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the watcher never said {text!r}; it said:\n{self.output}")

    def lines(self) -> int:
        return len(self.output.splitlines())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()


def world_env(world_environ: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(world_environ, USER="tester", **extra)
    env.pop("SSH_CONNECTION", None)
    env.pop("SUDO_USER", None)
    return env


def journal_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
