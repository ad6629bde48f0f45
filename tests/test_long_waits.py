"""Long waits say what they wait for: `check` and `validate` against a database where one
query's table is locked by someone else name that query (and how long it has waited) on
stderr while they wait, then finish normally once it is released; a quick one says nothing.
Real Postgres, a real lock; no timing is asserted (the lock is held until the words come)."""

from __future__ import annotations

import asyncio
import os
import selectors
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from cutover.cli.waiting import Waiting

BOOK = """\
version = 1
title = "waits"

[database]
dsn_env = "WAIT_DSN"
statement_timeout = "60s"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag"

[queries.held]
title = "Rows of a table someone holds"
file = "held.sql"

[queries.quick]
title = "One"
file = "quick.sql"

[[stages]]
id = "only"
title = "Only"
percent = 0

  [[stages.gates]]
  id = "rows"
  query = "held"
  column = "n"
  op = ">="
  value = 0

  [[stages.gates]]
  id = "one"
  query = "quick"
  column = "ok"
  op = "=="
  value = 1
"""


def book(folder: Path) -> Path:
    (folder / "held.sql").write_text("SELECT count(*) AS n FROM held;\n")
    (folder / "quick.sql").write_text("SELECT 1 AS ok;\n")
    (folder / "flag").write_text("0\n")
    path = folder / "runbook.toml"
    path.write_text(BOOK)
    return path


def until_said(proc: subprocess.Popen, words: str, limit_s: float = 60) -> str:
    """stderr as it comes, until `words` appear (or the process ends, or the limit)."""
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = ""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        for _ in range(int(limit_s * 10)):
            if words in seen or proc.poll() is not None:
                break
            if sel.select(timeout=0.1):
                seen += proc.stderr.read() or ""
    return seen


@pytest.mark.parametrize("command", ["check", "validate"])
def test_a_query_waiting_on_a_lock_is_named_while_it_waits(tmp_path, empty_dsn, command):
    path = book(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(WAIT_DSN=empty_dsn, USER="ops")

    async def main() -> tuple[str, str, int]:
        holder = await asyncpg.connect(empty_dsn)
        await holder.execute("CREATE TABLE held (id int)")
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cutover.cli", "--runbook", str(path), command],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            said = await asyncio.to_thread(until_said, proc, "waiting for")
        finally:
            await lock.rollback()  # let it go, whatever was said
            await holder.close()
        out, rest = proc.communicate(timeout=60)
        return said + rest, out, proc.returncode

    said, out, code = asyncio.run(main())
    waited = [line for line in said.splitlines() if "waiting for" in line]
    assert waited, said
    assert "held (" in waited[0]  # the query, by id, with how long
    assert all("quick" not in line for line in waited)
    assert "WAIT_DSN" not in said and empty_dsn not in said
    assert code == 0, (out, said)


def test_a_quick_runner_says_nothing_and_forgets_what_answered():
    class Quick:
        async def run(self, query, *args, **kw):
            return query.id

    class Query:
        id = "quick"

    waiting = Waiting(Quick(), clock=lambda: 100.0)

    async def main() -> str:
        return await waiting.run(Query())

    assert asyncio.run(main()) == "quick"
    assert waiting.pending == {} and waiting.words() == ""
    waiting.pending["held"] = 88.0
    assert waiting.words() == "waiting for held (12s)"
