"""`cutover demo --team`'s record: team mode's state store on the demo's own Postgres, as the
README's "Team mode" sets one up, scaled down to one server: a schema of its own (`store
init` run as the server's superuser, standing in for the schema's owner) and a writer role
with INSERT and SELECT only, which every console and the watcher connect as."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from cutover.record.store import pgschema

STATE_ENV = "CUTOVER_STATE_URL"  # the README's name for the writer's DSN
SCHEMA = "cutover"
WRITER = "cutover_demo_rw"
# The copy's [store] table: the record on Postgres, the DSN from STATE_ENV.
STORE = {"kind": "postgres", "dsn_env": STATE_ENV, "schema": SCHEMA}


def prepare_store(owner_dsn: str) -> str:
    """Create the writer role, `store init` the schema granting it what a console needs, and
    return the writer's DSN (same server and database, the writer's name and password)."""
    password = secrets.token_urlsafe(18)
    asyncio.run(_writer_role(owner_dsn, password))
    pgschema.init_now(owner_dsn, SCHEMA, WRITER, str)
    return as_writer(owner_dsn, password)


def as_writer(dsn: str, password: str) -> str:
    """`dsn` with the writer's name and password in place of its own user.

    >>> as_writer("postgresql://postgres:@/soulprint?host=/tmp/x", "pw")
    'postgresql://cutover_demo_rw:pw@/soulprint?host=/tmp/x'
    >>> as_writer("postgresql://postgres@127.0.0.1:5432/soulprint", "a/b")
    'postgresql://cutover_demo_rw:a%2Fb@127.0.0.1:5432/soulprint'
    """
    parts = urlsplit(dsn)
    where = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{WRITER}:{quote(password, safe='')}@{where}"))


async def _writer_role(dsn: str, password: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        # The demo's server is fresh on every start, but a role is the server's, not the
        # database's: a server kept from an earlier run would already have it.
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", WRITER)
        verb = "ALTER" if exists else "CREATE"
        # A role's password cannot be a bound parameter; token_urlsafe has no quote in it.
        await conn.execute(
            f"{verb} ROLE {WRITER} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
        )
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {WRITER}')
    finally:
        await conn.close()
