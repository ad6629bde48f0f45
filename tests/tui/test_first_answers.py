"""The console's first queries, asked before the console is built (sources/first_answers):
their answers are shown, never asked twice, never held past the console's start; the
console's own connections wait for theirs to close; a database down at start is said as
any outage is; a console that leaves at once stops them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from cutover.runbook.model import Database, Query
from cutover.runbook.sqlguard import RESOLVE_SQL
from cutover.sources.db import DatabaseUnavailable, QueryRunner
from cutover.sources.first_answers import FirstAnswers, ask_for_console
from cutover.tui import app as app_module
from cutover.tui.app import CutoverApp

from .conftest import session_for, until, visible_text, write_runbook
from .pgproxy import PgProxy

# Each answers after a while, long enough to be seen running on a loaded machine (the first
# answers' connections are still open when the console connects), and carries a mark to count
# on the wire.
SLOW_SUCCESS = """\
-- Success rate
-- Completed share of the imports that finished.
SELECT 99.5 AS rate, 'first-answer-success' AS mark, pg_sleep(1.5)::text AS waited;
"""
SLOW_ERRORS = """\
-- Top errors
-- The most common error messages.
SELECT 'timeout' AS error, 'first-answer-errors' AS mark, pg_sleep(1.5)::text AS waited;
"""
ASLEEP = "SELECT 'first-answer-asleep' AS mark, pg_sleep(60)::text AS waited"


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


async def opened(pg_server: str) -> PgProxy:
    proxy = PgProxy(pg_server)
    await proxy.open()
    return proxy


async def test_the_first_answers_are_shown_and_never_asked_twice(
    tmp_path: Path, pg_server: str, empty_dsn: str
) -> None:
    proxy = await opened(pg_server)
    path = write_runbook(tmp_path, success_sql=SLOW_SUCCESS, errors_sql=SLOW_ERRORS)
    session = session_for(path, proxy.dsn(database_of(empty_dsn)))
    first = ask_for_console(session)
    assert first is not None and [q.id for q in first.queries] == ["success", "errors"]
    # As behind the UI toolkit's import: the console comes up while Postgres runs them.
    for mark in ("first-answer-success", "first-answer-errors"):
        await eventually(lambda mark=mark: _is(running(empty_dsn, mark), 1))
    app = CutoverApp(session, probe_poll_s=None, first_answers=first)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: {"success", "errors"} <= set(app.results))
            assert app.results["success"].error is None
            await until(pilot, lambda: "first-answer-errors" in visible_text(app))
            assert app.refresher.db_up is True
            # The console's own connections, opened once the first answers' had closed.
            await until(pilot, lambda: app.refresher.runner is not None)
            await app.refresher.connect_early()
    finally:
        await asyncio.to_thread(first.close)
        await proxy.shut()
    sent = bytes(proxy.sent)
    assert sent.count(b"first-answer-success") == 1
    assert sent.count(b"first-answer-errors") == 1
    # The guard's verdicts came along with them: the catalog was asked once, not again.
    assert sent.count(RESOLVE_SQL.strip().splitlines()[0].encode()) == 1
    # Never two pools at once: the read-only role's connection limit counts them all.
    assert proxy.most_at_once <= 2


async def test_answers_ready_at_start_are_taken_in_after_the_first_frame(
    tmp_path: Path, pg_server: str, empty_dsn: str
) -> None:
    # Taken in before it, they held the first frame back by their panels' layout (the
    # bench's first paint, 0.85 -> 1.20 s): the console draws first, then fills them.
    path = write_runbook(tmp_path)
    session = session_for(path, empty_dsn)
    first = ask_for_console(session)
    assert first is not None
    await asyncio.wait_for(asyncio.wrap_future(first.closed), 10)  # every answer is ready
    drawn_when_taken: list[bool] = []

    class Watched(CutoverApp):
        CSS_PATH = str(Path(app_module.__file__).with_name("cutover.tcss"))

        def on_query_finished(self, message) -> None:
            drawn_when_taken.append(self.refresher.first_frame.is_set())
            super().on_query_finished(message)

    app = Watched(session, probe_poll_s=None, first_answers=first)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: {"success", "errors"} <= set(app.results))
    finally:
        await asyncio.to_thread(first.close)
    assert drawn_when_taken and all(drawn_when_taken), drawn_when_taken


async def test_a_slow_first_query_holds_back_no_other(
    tmp_path: Path, pg_server: str, empty_dsn: str
) -> None:
    # Until the first answers are all in, the console's other fetches run on their
    # connections: they do not wait for the slowest first answer.
    proxy = await opened(pg_server)
    slow = SLOW_SUCCESS.replace("pg_sleep(1.5)", "pg_sleep(4)")
    path = write_runbook(tmp_path, success_sql=slow, errors_sql=SLOW_ERRORS)
    session = session_for(path, proxy.dsn(database_of(empty_dsn)))
    first = FirstAnswers(session.runner, [session.runbook.queries["success"]]).start()
    await eventually(lambda: _is(running(empty_dsn, "first-answer-success"), 1))
    app = CutoverApp(session, probe_poll_s=None, first_answers=first)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: "errors" in app.results)
            assert app.results["errors"].error is None
            assert "success" not in app.results  # still sleeping
            await until(pilot, lambda: "success" in app.results, timeout=15)
            assert app.results["success"].error is None
    finally:
        await asyncio.to_thread(first.close)
        await proxy.shut()
    assert proxy.most_at_once <= 2  # on the first answers' pool, not a second one


async def test_a_database_down_at_start_is_said_and_the_console_reconnects(
    tmp_path: Path, pg_server: str, empty_dsn: str
) -> None:
    proxy = await opened(pg_server)
    proxy.refuse_new()  # the door is shut: connection refused
    path = write_runbook(tmp_path)
    session = session_for(path, proxy.dsn(database_of(empty_dsn)))
    first = ask_for_console(session)
    assert first is not None
    app = CutoverApp(session, probe_poll_s=None, first_answers=first)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.refresher.db_up is False)
            result = app.results["success"]
            assert result.error and "unreachable" in result.error
            assert "DB ✗" in visible_text(app)
            await proxy.open()
            await pilot.press("r")  # "now" beats the reconnect backoff
            await until(pilot, lambda: app.refresher.db_up is True, timeout=20)
            await until(pilot, lambda: app.results["success"].error is None)
    finally:
        await asyncio.to_thread(first.close)
        await proxy.shut()


async def running(dsn: str, mark: str) -> int:
    """How many of the server's sessions are running a query carrying `mark`."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1",
            f"%{mark}%",
        )
    finally:
        await conn.close()


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.1)


def asleep_queries() -> list[Query]:
    return [
        Query("asleep", "asleep", Path("asleep.sql"), None, 30, sql=ASLEEP),
        Query("quick", "quick", Path("quick.sql"), None, 30, sql="SELECT 1 AS one"),
    ]


def runner_for(dsn: str):
    return lambda: QueryRunner(Database(statement_timeout_s=120), dsn, size=2)


async def test_an_answer_not_taken_at_start_is_cancelled_and_never_handed_out(
    empty_dsn: str,
) -> None:
    first = FirstAnswers(runner_for(empty_dsn), asleep_queries()).start()
    try:
        quick = first.take("quick")
        assert quick is not None
        assert (await asyncio.wrap_future(quick)).rows == ((1,),)
        await eventually(lambda: _is(running(empty_dsn, "first-answer-asleep"), 1))
        first.drop_the_rest()
        assert first.take("asleep") is None  # a later fetch asks for itself
        await eventually(lambda: _is(running(empty_dsn, "first-answer-asleep"), 0))
        await asyncio.wait_for(asyncio.wrap_future(first.closed), 10)
    finally:
        await asyncio.to_thread(first.close)


async def test_closing_stops_a_query_still_running_and_ends_the_thread(empty_dsn: str) -> None:
    first = FirstAnswers(runner_for(empty_dsn), asleep_queries()).start()
    asleep = first.take("asleep")
    assert asleep is not None
    await eventually(lambda: _is(running(empty_dsn, "first-answer-asleep"), 1))
    began = time.monotonic()
    await asyncio.to_thread(first.close)
    assert time.monotonic() - began < 5
    assert first.closed.done() and not first._thread.is_alive()
    with pytest.raises(DatabaseUnavailable):  # the console is leaving: nobody reads it
        asleep.result(0)
    await eventually(lambda: _is(running(empty_dsn, "first-answer-asleep"), 0))


async def test_every_answer_resolves_when_the_runner_breaks(empty_dsn: str) -> None:
    class Broken(QueryRunner):
        async def run(self, query, *args, **kw):  # type: ignore[override]
            raise RuntimeError("a bug in the runner")

    first = FirstAnswers(lambda: Broken(Database(), empty_dsn, size=1), asleep_queries()).start()
    try:
        answers = [first.take("asleep"), first.take("quick")]
        for answer in answers:
            assert answer is not None
            with pytest.raises(RuntimeError, match="a bug in the runner"):
                answer.result(10)
        first.closed.result(10)
    finally:
        await asyncio.to_thread(first.close)


async def test_every_answer_resolves_when_closed_while_connecting(empty_dsn: str) -> None:
    class SlowToConnect(QueryRunner):
        async def connect(self) -> None:
            await asyncio.sleep(30)  # a database far away, or not answering

    first = FirstAnswers(
        lambda: SlowToConnect(Database(), empty_dsn, size=1), asleep_queries()
    ).start()
    taken = first.take("quick")
    late = None
    for _ in range(100):  # once its loop runs, it takes the console's other queries
        late = first.ask(asleep_queries()[0])
        if late is not None:
            break
        await asyncio.sleep(0.01)
    assert taken is not None and late is not None
    await asyncio.to_thread(first.close)
    for answer in (taken, late):
        with pytest.raises(DatabaseUnavailable):
            answer.result(5)
    assert first.ask(asleep_queries()[1]) is None  # closed: the console runs its own


def test_no_dsn_asks_nothing(tmp_path: Path) -> None:
    session = session_for(write_runbook(tmp_path), "")
    assert ask_for_console(session) is None


async def _is(count, wanted: int) -> bool:
    return await count == wanted
