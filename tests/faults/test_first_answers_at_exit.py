"""`cutover tui` asks its first queries before the console is built (sources/first_answers).
An operator who opens the console and leaves at once, while one of them still runs, must
get the shell back at once, and the database must not go on running it: the query is
cancelled, not left for the server to finish (a server does not notice a client gone in
the middle of a query). Driven for real: `cutover tui` in tmux on the suite's Postgres."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import asyncpg
import pytest
from tests.tui.conftest import write_runbook

from faults.test_console_hangup import Terminal, exit_status
from test_e2e_tmux import wait_for

ASLEEP = """\
-- Success rate
-- Takes a minute: still running when the operator leaves.
SELECT 99.5 AS rate, 'first-answer-at-exit' AS mark, pg_sleep(60)::text AS waited;
"""


def running(dsn: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%first-answer-at-exit%' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.fixture
def terminal():
    term = Terminal(f"cutover-first-{os.getpid()}")
    yield term
    term.tmux("kill-server")


@pytest.mark.parametrize("how", ["q", "hang up"])
def test_leaving_while_a_first_query_runs_is_at_once_and_cancels_it(
    tmp_path, terminal, soulprint_dsn, how
):
    book = write_runbook(tmp_path, success_sql=ASLEEP)
    # Not ended by the statement timeout either, as a long query on a big table is not.
    text = book.read_text()
    book.write_text(text.replace('statement_timeout = "5s"', 'statement_timeout = "2m"', 1))
    assert 'statement_timeout = "2m"' in book.read_text()
    env = {k: v for k, v in os.environ.items() if k != "TEST_DSN"}
    env.update(TEST_DSN=soulprint_dsn, USER="ops")
    status = terminal.open(
        tmp_path, env, sys.executable, "-m", "cutover.cli", "--runbook", str(book)
    )
    wait_for("the console", lambda: "Top errors" in terminal.screen(), 60, terminal.screen)
    wait_for("the first query to run", lambda: running(soulprint_dsn) == 1, 20)
    left = time.monotonic()
    if how == "q":
        terminal.keys("q")
    else:
        terminal.tmux("kill-session", "-t", "demo")  # the SSH link drops
    wait_for("the console to exit", lambda: exit_status(status) is not None, 30)
    assert time.monotonic() - left < 10  # not the minute the query would take
    assert exit_status(status) == (0 if how == "q" else 129)
    wait_for("the query to be cancelled", lambda: running(soulprint_dsn) == 0, 10)
