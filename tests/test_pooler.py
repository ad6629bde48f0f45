"""Behind a transaction pooler (Supabase's port 6543 is one): a real PgBouncer in
transaction mode in front of the suite's Postgres. Each transaction may land on another
server connection, so nothing of ours may rely on session state."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cutover.runbook.model import Database, Query
from cutover.sources.db import QueryRunner

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="needs pgbouncer (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pooler(pg_server: str) -> Iterator[str]:
    """PgBouncer in transaction mode, two server connections; yields a DSN through it."""
    socket_dir = parse_qs(urlsplit(pg_server).query)["host"][0]
    folder = Path(tempfile.mkdtemp(prefix="cutover-pgbouncer-"))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={socket_dir} user=postgres\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {folder}/users.txt\npool_mode = transaction\n"
        "default_pool_size = 2\nunix_socket_dir =\n"
        f"logfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n"
    )
    # PgBouncer will not run as root; the embedded server's own user can reach its socket,
    # and must be able to write its log and pid file here.
    os.chmod(folder, 0o777)
    for f in folder.iterdir():
        os.chmod(f, 0o644)
    user = ["-u", "embedded_postgres"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [PGBOUNCER, *user, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = urlsplit(pg_server).path.lstrip("/") or "postgres"
    dsn = f"postgresql://postgres@127.0.0.1:{port}/{database}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            process.kill()
            pytest.fail(f"pgbouncer did not start: {process.communicate()[1]}")
        yield dsn
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


QUERY = Query(
    id="tables",
    title="Tables",
    file=Path("tables.sql"),
    statement=None,
    refresh_s=30,
    sql="SELECT count(*) AS n FROM pg_class WHERE relname <> $1::text",
)


async def test_queries_run_through_a_transaction_pooler_again_and_again(pooler):
    runners = [QueryRunner(Database(pooler="transaction"), pooler) for _ in range(2)]
    try:
        for _ in range(20):
            results = await asyncio.gather(*(r.run(QUERY, "x") for r in runners for _ in range(2)))
            assert [r.error for r in results] == [None] * 4
            assert all(r.rows[0][0] > 0 for r in results)
    finally:
        for runner in runners:
            await runner.aclose()


async def test_a_slow_query_behind_the_pooler_times_out_as_the_runbook_says(pooler):
    runner = QueryRunner(Database(pooler="transaction", statement_timeout_s=0.2), pooler)
    slow = Query(
        id="slow",
        title="Slow",
        file=Path("slow.sql"),
        statement=None,
        refresh_s=30,
        sql="SELECT pg_sleep(2) AS slept",
    )
    try:
        result = await runner.run(slow)
        assert result.error == "timed out after 0.2s (the runbook's statement_timeout)"
        assert (await runner.run(QUERY)).error is None  # and the runner carries on
    finally:
        await runner.aclose()
