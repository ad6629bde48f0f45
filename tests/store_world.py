"""A small runbook whose record lives on Postgres (team mode), for the store's tests: a file
flag (no platform), manual steps, and the state store in a database of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from moves_world import Ran

BOOK = """\
version = 1
title = "Team: v1 → v2"

[database]
dsn_env = "CUTOVER_DATABASE_URL"

[store]
kind = "postgres"
dsn_env = "CUTOVER_STATE_URL"
schema = "{schema}"

[flag]
kind = "file"
path = "flag"

[queries.ok]
file = "ok.sql"

[[stages]]
id = "off"
percent = 0

  [[stages.steps]]
  id = "looked"
  text = "Someone looked"

[[stages]]
id = "canary"
percent = 10
hold = "0s"
"""


def write_book(folder: Path, schema: str = "cutover") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ok.sql").write_text("SELECT 1 AS ok;\n")
    (folder / "flag").write_text("0\n")
    path = folder / "runbook.toml"
    path.write_text(BOOK.format(schema=schema))
    return path


def env_for(state_dsn: str, *, user: str = "ana", **more: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CUTOVER_", "VERCEL_")) and k not in ("SSH_CONNECTION", "SUDO_USER")
    }
    env.update(CUTOVER_STATE_URL=state_dsn, USER=user, **more)
    return env


def cli(book: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=book.parent,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def sql(dsn: str, statement: str, *args: object) -> list:
    """One statement on a connection of its own (as the test's superuser, unless the DSN
    says otherwise)."""

    async def go() -> list:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(statement, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def with_user(dsn: str, user: str, password: str) -> str:
    """The same database as another role (the socket host query stays)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


class CutProxy:
    """A TCP door to the test's Postgres (its unix socket) that can be shut and opened again:
    the store unreachable as a network loss looks (connections cut, new ones refused)."""

    def __init__(self, server_dsn: str):
        import socket
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(server_dsn)
        query = parse_qs(parts.query)
        folder = query["host"][0]
        port = query.get("port", [str(parts.port or 5432)])[0]
        self.target = f"{folder}/.s.PGSQL.{port}"
        self.database = parts.path.lstrip("/")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener = None
        self._open: list = []
        self._clients: list = []
        self.frozen = False
        self.start()

    def dsn(self, password: str = "s3cret-pw") -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        import socket
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener

        def accept() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                if self.frozen:  # taken, and never answered
                    self._open.append(client)
                    continue
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.target)
                self._open += [client, server]
                self._clients.append(client)
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=_pump, args=(a, b, self), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def freeze(self) -> None:
        """The host gone silent (a network that drops every packet): connections stay open,
        nothing said on them arrives, and new ones are taken but never answered."""
        self.frozen = True

    def say_fatal(self) -> None:
        """Send every client the FATAL a server sends an idle connection it is about to end
        (a fast shutdown, pg_terminate_backend), and leave the socket open: the moment
        before the close, when a client may already be sending its next call."""
        from tests.tui.pgproxy import fatal_message

        for client in self._clients:
            with contextlib.suppress(OSError):
                client.sendall(fatal_message("terminating connection due to administrator command"))

    def cut(self) -> None:
        import socket

        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not, and the
            # kernel would go on accepting for it.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open = []
        self._clients = []


def _pump(src, dst, proxy: CutProxy) -> None:
    try:
        while data := src.recv(65536):
            if not proxy.frozen:
                dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(1)
