"""A small runbook whose record lives on Postgres (team mode), for the store's tests: a file
flag (no platform), manual steps, and the state store in a database of the test's own."""

from __future__ import annotations

import asyncio
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
