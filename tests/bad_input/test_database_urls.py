"""A DSN that cannot work, or a database that is not there, is one line the operator can act
on — from validate, check and the console's start — exit 2, no traceback, no password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

PASSWORD = "s3cretpw"
RUNBOOK = """\
version = 1
title = "dsn"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0

[[triggers]]
id = "errors"
query = "q"
column = "n"
op = ">"
value = 10
"""

MALFORMED = [
    f"postgresql://app:{PASSWORD}@[::1:5432/soulprint",  # the ] of an IPv6 host forgotten
    f"postgresql://app:{PASSWORD}@[::1/soulprint",
    f"postgresql://app:{PASSWORD}@db:54x2/soulprint",  # a port that is not a number
    f"postgresql://app:{PASSWORD}@db:99999/soulprint",
    f"host=db user=app password={PASSWORD} dbname=soulprint",  # libpq key=value
]


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "q.sql").write_text("-- Errors\nSELECT 1 AS n;\n", encoding="utf-8")
    (tmp_path / "flag").write_text("0\n", encoding="utf-8")
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK, encoding="utf-8")
    return path


def cutover(book: Path, dsn: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DEBUG"}
    env.update(CUTOVER_DATABASE_URL=dsn, USER="ana", TERM="dumb")
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=book.parent,
    )


def said_once(done: subprocess.CompletedProcess) -> str:
    """The one line of stderr, checked to be safe to show."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    return lines[0]


@pytest.mark.parametrize("dsn", MALFORMED)
@pytest.mark.parametrize("command", ["validate", "check", "tui"])
def test_a_malformed_dsn_is_one_line_and_exit_2(book: Path, dsn: str, command: str):
    done = cutover(book, dsn, command)
    assert done.returncode == 2, done.stdout + done.stderr
    line = said_once(done)
    assert line.startswith(f"cutover {command}: CUTOVER_DATABASE_URL does not hold a Postgres URL")
    assert "postgresql://USER@HOST:PORT/DATABASE, with :PASSWORD after USER" in line


@pytest.mark.parametrize("command", ["validate", "check"])
def test_a_database_down_behind_a_unix_socket_says_nobody_listens_there(
    book: Path, tmp_path: Path, command: str
):
    dsn = f"postgresql://app:{PASSWORD}@/soulprint?host={tmp_path}&port=6543"
    done = cutover(book, dsn, command)
    assert done.returncode == 2, done.stdout + done.stderr
    line = said_once(done)
    assert line == (
        f"cutover {command}: database unreachable: no server listening at "
        f"{tmp_path}/.s.PGSQL.6543 (is Postgres running?)"
    )


def test_a_stale_socket_file_nobody_listens_on_says_the_same(book: Path, tmp_path: Path):
    import socket

    path = tmp_path / ".s.PGSQL.5432"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # bound, never listening: connect is refused
        host = quote(str(tmp_path), safe="")  # the socket's folder as the URL's host
        done = cutover(book, f"postgresql://app:{PASSWORD}@{host}/soulprint", "check")
    assert done.returncode == 2, done.stdout + done.stderr
    assert said_once(done).endswith(f"no server listening at {path} (is Postgres running?)")
