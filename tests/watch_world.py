"""What the watcher tests share: a runbook derived from the shipped one (its queries and
triggers, a canary that arms auto_rollback, a webhook), a real webhook receiver on loopback,
and `cutover watch` as a real subprocess whose lines a test waits for."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
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

import asyncpg
import tomli_w

from cutover.judge.session import Session
from cutover.record.journal import Journal
from cutover.runbook.loader import load
from cutover.sources.notify import Notifier, webhooks
from cutover.traffic import actions
from cutover.traffic.flags import open_flag
from cutover.watch.watcher import ManualClock, Watcher

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
    hold: str = "24h",
) -> Path:
    """A source runbook for the demo world: the shipped queries (every one refreshed every
    `refresh`) and triggers, an `off` stage at 0 % with nothing to wait for, and a canary
    at `canary_percent` with the shipped gates that arms auto_rollback on the success-rate
    trigger. Query files point at the shipped ones."""
    data: dict[str, Any] = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    for query in data["queries"].values():
        if "file" in query:  # an http query has none
            query["file"] = str((REPO / query["file"]).resolve())
        if query.get("kind") != "derived":  # computed when what it reads answers
            query["refresh"] = refresh
    shipped_canary = next(s for s in data["stages"] if s["id"] == "canary")
    shipped_gates = list(shipped_canary.get("gates", []))
    for name in shipped_canary.get("use", []):  # the gate sets it uses
        shipped_gates += data["gatesets"][name]["gates"]
    canary: dict[str, Any] = {
        "id": "canary",
        "title": "Canary",
        "percent": canary_percent,
        "hold": hold,
        "checkpoint": "12h",
        # v2's own row needs fresh v2 imports to decide, more than a test waits for: the
        # rest of the shipped canary gates decide on the demo's past at once.
        "gates": [g for g in shipped_gates if g["id"] != "v2_success"],
    }
    if auto_rollback:
        canary["auto_rollback"] = ["success_below_95"]
    data["stages"] = [{"id": "off", "title": "Off", "percent": 0, "hold": "0s"}, canary]
    # A trigger scoped to stages this runbook does not have is left out; one live in the
    # canary is live here too.
    kept = []
    for trigger in data["triggers"]:
        if "stages" in trigger:
            trigger["stages"] = [s for s in trigger["stages"] if s == "canary"]
            if not trigger["stages"]:
                continue
        kept.append(trigger)
    data["triggers"] = kept
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


class Door:
    """A TCP door to the embedded Postgres that a test shuts and opens again (the database
    going away, as a restart or a dropped network does), served from threads so that a
    test driving the watcher's own event loop needs no second loop."""

    def __init__(self, server_uri: str) -> None:
        from urllib.parse import parse_qs, urlsplit

        host = parse_qs(urlsplit(server_uri).query)["host"][0]
        self.socket_path = os.path.join(host, ".s.PGSQL.5432")
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)


# ------------------------------------------------------------- the core, in this process

METRIC_SCHEMA = """
CREATE TABLE metric (name text PRIMARY KEY, value numeric);
INSERT INTO metric VALUES ('rate', 99), ('stuck', 0);
"""


def metric_runbook(
    folder: Path,
    *,
    hold: str = "1h",
    max_gap: str = "10m",
    auto_rollback: bool = False,
    trigger_for: str | None = None,
    checkpoint: str | None = None,
    notify: bool = False,
) -> Path:
    """A small runbook over one table a test sets by hand (`metric`: rate, stuck), with a
    file flag: `off` at 0 %, `canary` at 50 % gated on rate ≥ 95 and stuck = 0, a critical
    trigger rate < 90 (armed when `auto_rollback`) and a high one stuck > 10."""
    queries = folder / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    (queries / "rate.sql").write_text(
        "-- Rate\nSELECT value AS rate FROM metric WHERE name = 'rate';\n"
    )
    (queries / "stuck.sql").write_text(
        "-- Stuck\nSELECT value AS stuck FROM metric WHERE name = 'stuck';\n"
    )
    extra = f'checkpoint = "{checkpoint}"\n' if checkpoint else ""
    if auto_rollback:
        extra += 'auto_rollback = ["rate_low"]\n'
    waits = f'for = "{trigger_for}"\n' if trigger_for else ""
    text = f"""\
version = 1
title = "metric cutover"

[database]
dsn_env = "CUTOVER_DATABASE_URL"
statement_timeout = "5s"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag-percent"

[queries.rate]
title = "Rate"
file = "queries/rate.sql"
refresh = "30s"

[queries.stuck]
title = "Stuck"
file = "queries/stuck.sql"
refresh = "1m"

[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "0s"

[[stages]]
id = "canary"
title = "Canary"
percent = 50
hold = "{hold}"
max_gap = "{max_gap}"
{extra}
  [[stages.gates]]
  id = "rate_ok"
  query = "rate"
  column = "rate"
  op = ">="
  value = 95

  [[stages.gates]]
  id = "no_stuck"
  query = "stuck"
  column = "stuck"
  op = "=="
  value = 0

[[triggers]]
id = "rate_low"
query = "rate"
column = "rate"
op = "<"
value = 90
severity = "critical"
{waits}
[[triggers]]
id = "stuck_high"
query = "stuck"
column = "stuck"
op = ">"
value = 10
severity = "high"
respond_within = "1h"
"""
    if notify:
        text += f'\n[[notify]]\nkind = "webhook"\nurl_env = "{HOOK_ENV}"\n'
    (folder / "flag-percent").write_text("0\n")
    path = folder / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def metric_database(empty_dsn: str) -> str:
    """The `metric` table in a fresh database: rate 99, stuck 0."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(METRIC_SCHEMA)
    finally:
        await conn.close()
    return empty_dsn


async def set_metric(dsn: str, name: str, value: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE metric SET value = $2 WHERE name = $1", name, value)
    finally:
        await conn.close()


class Core:
    """A watcher in this process on a manual clock, its lines in a list; `alice` is the
    person who advances."""

    def __init__(self, runbook: Path, dsn: str, **env: str):
        self.book = load(runbook)
        self.env = {"CUTOVER_DATABASE_URL": dsn, "USER": "tester", **env}
        self.clock = ManualClock()
        self.session = self.on_clock(Session(self.book, self.env), "watch (tester)")
        self.lines: list[str] = []
        self.flag = open_flag(self.book.flag, self.env)
        self.runner = self.session.runner()
        hooks, _ = webhooks(self.book.notify, self.env)
        self.notifier = Notifier(
            hooks,
            say=lambda line: self.watcher.say(line, notify=False),
            redact=self.session.redact,
            backoff_s=(0.05, 0.1, 0.2),  # the real one waits up to a minute
        )
        self.watcher = Watcher(
            self.session,
            runner=self.runner,
            flag=self.flag,
            out=self.lines.append,
            clock=self.clock,
            notifier=self.notifier,
        )

    async def start(self) -> None:
        self.notifier.start()
        await self.watcher.start()

    def on_clock(self, session: Session, actor: str) -> Session:
        """The session's journal on the test's clock, so every time agrees."""
        session.journal = Journal(
            self.book.journal_path, actor=actor, clock=self.clock.now, redact=session.redact
        )
        return session

    def alice(self) -> Session:
        return self.on_clock(Session(self.book, {**self.env, "USER": "alice"}), "alice")

    async def cycles(self, count: int, every_s: float = 30.0) -> None:
        for _ in range(count):
            self.clock.advance(every_s)
            await self.watcher.cycle(settle=True)

    def said(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    async def advance_by_alice(self) -> None:
        alice = self.alice()
        report, _ = await alice.check(self.runner, self.book.stage("off"))
        outcome = await actions.advance(alice, self.flag, report=report, confirm=50)
        assert outcome.ok, outcome.message

    async def close(self) -> None:
        await self.watcher.stop()
        await self.notifier.aclose(drain_s=1.0)
        await self.runner.aclose()


@contextmanager
def demo_world(scratch: Path, **runbook: Any) -> Iterator[Any]:
    """The demo world on a runbook from `watch_runbook`, with a thin past so that a failing
    v2 shows in the 24-hour success rate within seconds."""
    from cutover.demo.traffic import Knobs
    from cutover.demo.world import World

    world = World(
        scratch / "demo",
        runbook=watch_runbook(scratch / "source", **runbook),
        rate=1.0,
        build_seconds=0.3,
        knobs=Knobs(time_scale=600.0),
        seed=5,
    )
    with world:
        yield world


def cutover_cli(world: Any, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(world.runbook_path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=world.dir,
    )


def to_failing_canary(world: Any, watcher: WatchProcess, env: dict[str, str]) -> None:
    """Advance to the canary by the CLI, then make every v2 import fail: the armed
    success-rate trigger fires within seconds."""
    watcher.wait_for("off (0 %, visit 1): gates none")
    advanced = cutover_cli(world, env, "advance", "--confirm", "50")
    assert advanced.returncode == 0, advanced.stdout + advanced.stderr
    watcher.wait_for("canary (50 %, visit 2): gates success")
    world.traffic.set_knobs(rate=3000.0, v2_failure_rate=1.0)
