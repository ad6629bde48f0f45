"""The read-only role the README tells operators to create does what it says: run as written
on a real Postgres, it reads the runbook's tables and nothing else, cannot write even when
it turns read-only off, cannot call dblink, and the shipped runbook validates as it."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

REPO = Path(__file__).resolve().parents[2]
_roles = itertools.count(1)


def readme_sql() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A read-only database role", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, re.S)
    assert match, "the README's read-only role section has its SQL"
    return match.group(1)


def as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


@pytest.fixture
async def role_dsn(soulprint_dsn: str):
    """The README's SQL, run as written (the role and database names made this test's)."""
    role = f"cutover_ro_{os.getpid()}_{next(_roles)}"
    admin = await asyncpg.connect(soulprint_dsn)
    database = await admin.fetchval("SELECT current_database()")
    await admin.execute(
        "CREATE EXTENSION dblink; CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('x')"
    )
    sql = (
        readme_sql()
        .replace("cutover_ro", role)
        .replace("DATABASE soulprint", f'DATABASE "{database}"')
    )
    await admin.execute(sql)
    password = re.search(r"PASSWORD '([^']*)'", sql).group(1)
    try:
        yield as_role(soulprint_dsn, role, password)
    finally:
        await admin.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
        await admin.close()


async def test_the_role_reads_the_runbooks_tables(role_dsn):
    conn = await asyncpg.connect(role_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM user_profiles") == 0
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SHOW statement_timeout") == "10s"
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM user_profiles",
        "SET default_transaction_read_only = off; DELETE FROM user_profiles",
        "SET default_transaction_read_only = off; CREATE TABLE mine (x int)",
        "SELECT * FROM secrets",
        "SELECT dblink_exec('dbname=postgres', 'SELECT 1')",
        "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)",
        "SELECT pg_read_file('postgresql.conf')",
        "SELECT pg_reload_conf()",
    ],
)
async def test_the_role_cannot_write_create_read_elsewhere_or_reach_out(role_dsn, sql):
    conn = await asyncpg.connect(role_dsn)
    try:
        with pytest.raises(
            (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)
        ):
            await conn.execute(sql)
    finally:
        await conn.close()


def test_the_shipped_runbook_validates_as_the_role(role_dsn):
    env = {**os.environ, "CUTOVER_DATABASE_URL": role_dsn}
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(REPO / "runbook.toml"), "validate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "all prepared on Postgres" in done.stdout
