"""The console's first frame (#20): in its own terminal (run_app) the database client runs on a
thread of its own and the first screen's queries leave before Textual starts (start_early);
the panels are laid out and drawn once the first screen's have their rows, or after
FIRST_FRAME_WAIT_S, not empty and then again with each answer."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui import dbthread, first_screen
from cutover.tui.app import CutoverApp
from cutover.tui.dbthread import ThreadedRunner
from cutover.tui.widgets.query_panel import QueryPanel

from .conftest import T0, scripted, session_for, until, visible_text, write_runbook

SUCCESS_SQL = """\
-- Success rate
-- The time the database answered at, as a rate nobody judges.
SELECT 99.5 AS rate, 1 AS total, clock_timestamp() AS answered_at;
"""


def threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


async def test_a_query_started_early_is_answered_before_it_is_asked(tmp_path: Path, empty_dsn: str):
    session = session_for(write_runbook(tmp_path, success_sql=SUCCESS_SQL), empty_dsn)
    success = session.runbook.queries["success"]
    runner = ThreadedRunner(session.runner())
    try:
        assert "cutover database" in threads()
        runner.start_early([(success, ())])
        # Nobody on this loop awaits it, yet it runs: on the runner's own thread.
        for _ in range(200):
            if runner._early["success"][2].done():
                break
            await asyncio.sleep(0.05)
        asked_at = datetime.now(UTC)
        early = await runner.run(success)
        assert early.error is None and early.ran_at < asked_at
        again = await runner.run(success)  # taken once: the next run asks the database
        assert again.ran_at > asked_at
        assert again.rows[0][2] > early.rows[0][2]  # the server's clock, later
    finally:
        await runner.aclose()
    assert "cutover database" not in threads()


async def test_an_early_query_with_other_arguments_is_sent_again(tmp_path: Path, empty_dsn: str):
    session = session_for(write_runbook(tmp_path, success_sql=SUCCESS_SQL), empty_dsn)
    success = session.runbook.queries["success"]
    runner = ThreadedRunner(session.runner())
    try:
        runner.start_early([(success, ("stale",))])
        asked_at = datetime.now(UTC)
        result = await runner.run(success)
        assert result.error is None and result.ran_at >= asked_at
    finally:
        await runner.aclose()


async def test_a_database_that_is_not_there_is_said_by_the_first_fetch(tmp_path: Path):
    # start_early with no database: the console starts and its panel says why, as before.
    app = CutoverApp(
        session_for(write_runbook(tmp_path), "postgresql://nobody@127.0.0.1:9/none"),
        probe_poll_s=None,
    )
    app.start_early()
    assert isinstance(app.refresher.runner, ThreadedRunner)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#panel-success", QueryPanel)
        await until(pilot, lambda: panel.result is not None)
        assert panel.result.error and app.refresher.db_up is False
    assert "cutover database" not in threads()


async def test_without_a_dsn_start_early_leaves_it_to_the_first_fetch(tmp_path: Path):
    app = CutoverApp(session_for(write_runbook(tmp_path), ""), probe_poll_s=None)
    app.start_early()
    assert app.refresher.runner is None  # the fetch says "no database: set TEST_DSN ..."


async def test_the_console_in_its_own_terminal_shows_the_early_answers(
    tmp_path: Path, empty_dsn: str
):
    app = CutoverApp(
        session_for(write_runbook(tmp_path, success_sql=SUCCESS_SQL), empty_dsn),
        probe_poll_s=None,
    )
    app.start_early()
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#panel-success", QueryPanel)
        await until(pilot, lambda: panel.table.row_count == 1)
        assert panel.result is not None and panel.result.error is None
    assert "cutover database" not in threads()


class Held:
    """A scripted runner whose answers wait for `release`."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.script = scripted(lambda: T0)

    async def connect(self) -> None:
        pass

    async def run(self, query: Query, *args: object) -> QueryResult:
        await self.release.wait()
        return self.script.answer(query)

    async def aclose(self) -> None:
        pass


def held_console(tmp_path: Path) -> tuple[CutoverApp, Held]:
    held = Held()
    path = write_runbook(tmp_path)
    app = CutoverApp(
        session_for(path),
        clock=lambda: T0,
        runner_factory=lambda: held,
        probe_poll_s=None,
    )
    return app, held


async def test_the_panels_are_drawn_once_the_first_screens_rows_are_in(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(first_screen, "FIRST_FRAME_WAIT_S", 60.0)
    app, held = held_console(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panels = app.main.query_one("#panels")
        await pilot.pause(0.3)
        assert not panels.display  # the header, the runbook and the keys are drawn
        assert "Team is ready" in visible_text(app)
        held.release.set()
        await until(pilot, lambda: panels.display)
        for panel in app.query(QueryPanel):
            assert panel.filled and panel.table.row_count == len(panel.result.rows)


async def test_the_panels_are_drawn_after_a_while_without_their_rows(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(first_screen, "FIRST_FRAME_WAIT_S", 0.3)
    app, held = held_console(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        panels = app.main.query_one("#panels")
        await until(pilot, lambda: panels.display)
        assert all(p.result is None for p in app.query(QueryPanel))  # the database is slow
        held.release.set()
        await until(pilot, lambda: all(p.filled for p in app.query(QueryPanel)))


async def test_an_early_answer_not_taken_in_time_is_not_handed_out(
    tmp_path: Path, empty_dsn: str, monkeypatch
):
    monkeypatch.setattr(dbthread, "EARLY_FOR_S", 0.0)
    session = session_for(write_runbook(tmp_path, success_sql=SUCCESS_SQL), empty_dsn)
    success = session.runbook.queries["success"]
    runner = ThreadedRunner(session.runner())
    try:
        runner.start_early([(success, ())])
        asked_at = datetime.now(UTC)
        result = await runner.run(success)
        assert result.error is None and result.ran_at >= asked_at
    finally:
        await runner.aclose()
