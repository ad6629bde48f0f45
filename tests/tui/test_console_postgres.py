"""The console on a real Postgres (the suite's embedded server) and a file flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets import DataTable, Input

from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.judge.session import Session
from cutover.runbook import loader as runbook
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import AdvanceScreen, MoveScreen, RollbackScreen
from cutover.tui.widgets.query_panel import QueryPanel
from scenarios import load_dsn

from .conftest import session_for, until, visible_text, write_runbook
from .pgproxy import PgProxy

ROOT = Path(__file__).resolve().parents[2]

SUCCESS_SQL = """\
-- Success rate
-- Completed share of the imports that finished, last 24 h.
SELECT round(100.0 * count(*) FILTER (WHERE full_pass_status = 'complete')
             / NULLIF(count(*) FILTER (WHERE full_pass_status IN ('complete', 'failed')), 0),
             2) AS rate,
       count(*) AS total,
       NULL::int AS stuck
  FROM user_profiles
 WHERE full_pass_started_at >= now() - interval '24 hours';
"""

HOSTILE_SQL = """\
-- Hostile text
-- Values that look like markup or terminal escapes must be shown, never obeyed.
SELECT '[bold red]boom[/]' AS msg, E'\\x1b[31mred\\x1b[0m' AS esc, NULL::int AS nothing,
       0 AS zero, 1234567.5::numeric AS big;
"""

MISSING_SQL = """\
-- Top errors
-- Reads a table this database does not have.
SELECT error, count(*) AS n FROM import_errors GROUP BY error;
"""


async def healthy(dsn: str) -> None:
    await load_dsn(dsn, "healthy")


def console(tmp_path: Path, dsn: str, **kw) -> CutoverApp:
    path = write_runbook(tmp_path, success_sql=SUCCESS_SQL, **kw)
    return CutoverApp(session_for(path, dsn), probe_poll_s=None)


def sign(app: CutoverApp, stage: str, *steps: str) -> None:
    visit = app.session.state()[0].visit
    for step in steps:
        app.session.journal.append(
            "signoff", stage=stage, step=step, visit=visit, note="", override=False, probe=None
        )


async def moving(pilot, app: CutoverApp, kind: type) -> MoveScreen:
    """The dialog that shows a move's progress, once the question's answer started it."""
    await until(pilot, lambda: isinstance(app.screen, kind) and app.screen.started)
    return app.screen


async def advance_to_canary(pilot, app: CutoverApp) -> None:
    await until(pilot, lambda: app.check_action("advance", ()) is True)
    await pilot.press("a")
    assert isinstance(app.screen, AdvanceScreen)
    await pilot.press(*"10", "enter")
    await until(pilot, lambda: app.cstate.stage_id == "canary" and not app.move_in_flight())
    await pilot.press("escape")


async def test_advance_needs_the_typed_percent_then_shows_progress_and_moves(
    tmp_path: Path, soulprint_dsn: str
):
    await healthy(soulprint_dsn)
    app = console(tmp_path, soulprint_dsn)
    sign(app, "prep", "ready", "backup")
    async with app.run_test(size=(100, 30)) as pilot:
        await advance_to_canary(pilot, app)
        sign(app, "canary", "no_complaints")
        await until(pilot, lambda: app.check_action("advance", ()) is True)  # gate PASS at 99 %
        await pilot.press("a")
        dialog = app.screen
        assert isinstance(dialog, AdvanceScreen)
        assert (dialog.from_percent, dialog.to_percent) == (10, 50)
        await pilot.press(*"10", "enter")  # the wrong number does nothing
        await pilot.pause(0.2)
        assert not dialog.started and (tmp_path / "flag" / "percent").read_text() == "10\n"
        dialog.query_one(Input).value = ""
        await pilot.press(*"50", "enter")
        dialog = await moving(pilot, app, AdvanceScreen)
        await until(pilot, lambda: dialog.done)
        log = "\n".join(dialog.query_one("#progress").lines)
        assert "write percent=50" in log and "read back 50" in log and "✓ advance verified" in log
        assert "✓ advance to 50 % verified" in str(dialog.query_one("#result").render())
        assert (tmp_path / "flag" / "percent").read_text() == "50\n"
        assert app.cstate.stage_id == "half"
        kinds = [e.kind for e in app.session.journal.read().events]
        assert kinds[-2:] == ["advance.intent", "advance.done"]


async def test_rollback_from_inside_the_advance_dialog_takes_traffic_to_zero(
    tmp_path: Path, soulprint_dsn: str
):
    await healthy(soulprint_dsn)
    app = console(tmp_path, soulprint_dsn)
    sign(app, "prep", "ready", "backup")
    async with app.run_test(size=(80, 24)) as pilot:
        await advance_to_canary(pilot, app)
        sign(app, "canary", "no_complaints")
        await until(pilot, lambda: app.check_action("advance", ()) is True)
        await pilot.press("a")
        assert isinstance(app.screen, AdvanceScreen)
        await pilot.press("5")  # half-typed, cursor in the input
        await pilot.press("ctrl+r")
        dialog = app.screen
        assert isinstance(dialog, RollbackScreen)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not dialog.started  # Enter is not a confirmation
        await pilot.press("y")
        dialog = await moving(pilot, app, RollbackScreen)
        await until(pilot, lambda: dialog.done)
        assert (tmp_path / "flag" / "percent").read_text() == "0\n"
        assert "✓ rollback to 0 % verified" in str(dialog.query_one("#result").render())
        events = app.session.journal.read().events
        assert [e.kind for e in events[-2:]] == ["rollback.intent", "rollback.done"]
        assert "emergency rollback" in events[-2].get("reason")
        assert app.cstate.stage_id == "prep" and app.cstate.percent == 0


async def test_rollback_keeps_retrying_and_shows_each_attempt(tmp_path: Path, soulprint_dsn: str):
    await healthy(soulprint_dsn)
    app = console(tmp_path, soulprint_dsn)
    sign(app, "prep", "ready", "backup")
    async with app.run_test(size=(80, 24)) as pilot:
        await advance_to_canary(pilot, app)
        flag_dir = tmp_path / "flag"
        (flag_dir / "percent").unlink()
        flag_dir.rmdir()
        flag_dir.write_text("a file where the flag's folder should be")  # writes now fail
        await pilot.press("ctrl+r", "y")
        dialog = await moving(pilot, app, RollbackScreen)
        await until(
            pilot,
            lambda: any("attempt 1 failed" in ln for ln in dialog.query_one("#progress").lines),
        )
        assert not dialog.done and app.move_running("rollback")
        flag_dir.unlink()  # the platform is back
        await until(pilot, lambda: dialog.done, timeout=15)
        assert (flag_dir / "percent").read_text() == "0\n"
        assert "cannot write flag file" in "\n".join(dialog.query_one("#progress").lines)


async def test_a_failing_query_sits_beside_healthy_ones_and_strange_text_stays_literal(
    tmp_path: Path, soulprint_dsn: str
):
    await healthy(soulprint_dsn)
    path = write_runbook(tmp_path, success_sql=HOSTILE_SQL, errors_sql=MISSING_SQL)
    app = CutoverApp(session_for(path, soulprint_dsn), probe_poll_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.results) == 2)
        await pilot.pause(0.1)
        failed = app.query_one("#panel-errors", QueryPanel)
        assert "needs table import_errors" in str(failed.query_one(".error").render())
        table = app.query_one("#panel-success", QueryPanel).query_one(DataTable)
        cells = [table.get_cell_at((0, c)) for c in range(5)]
        assert [c.plain for c in cells] == [
            "[bold red]boom[/]",
            "^[[31mred^[[0m",
            "NULL",
            "0",
            "1,234,567.5",
        ]
        assert cells[2].style == "dim italic" and cells[3].style != cells[2].style
        assert cells[4].justify == "right" and cells[0].justify == "left"
        assert app.refresher.db_up is True  # a bad query is not a dead database


async def test_database_down_goes_stale_and_comes_back(
    tmp_path: Path, pg_server: str, soulprint_dsn: str
):
    await healthy(soulprint_dsn)
    proxy = PgProxy(pg_server)
    await proxy.open()
    database = soulprint_dsn.split("?")[0].rsplit("/", 1)[1]
    path = write_runbook(tmp_path, success_sql=SUCCESS_SQL)
    app = CutoverApp(session_for(path, proxy.dsn(database)), probe_poll_s=None)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.refresher.db_up is True and len(app.results) == 2)
            app.refresher.intervals = dict.fromkeys(app.refresher.intervals, 0.5)
            await proxy.shut()
            # A gate's query goes stale by the runbook's interval (30 s), not the one `-`
            # set: let two of them pass.
            app.clock = lambda: datetime.now(UTC) + timedelta(minutes=2)
            await pilot.press("r")
            await until(pilot, lambda: app.refresher.db_up is False)
            await until(pilot, lambda: app.query_one("#panel-success").has_class("-stale"))
            panel = app.query_one("#panel-success", QueryPanel)
            assert "⚠ STALE" in panel.border_subtitle
            assert "DB ✗ down" in str(app.query_one("#header").render())
            rows_kept = panel.query_one(DataTable).row_count
            assert rows_kept == 1  # the last rows stay on screen, marked stale
            assert app.report.triggers[0].judgement.holds is None  # undecided, fail closed
            await pilot.press("l")  # the console keeps working
            await pilot.press("escape")
            await proxy.open()
            await pilot.press("r")  # "now" beats the reconnect backoff
            await until(pilot, lambda: app.refresher.db_up is True, timeout=20)
            app.clock = lambda: datetime.now(UTC)
            await until(pilot, lambda: not panel.has_class("-stale"))
            assert "DB ✓" in str(app.query_one("#header").render())
    finally:
        await proxy.shut()


async def test_database_down_is_one_truth_at_once_not_fine_until_stale(
    tmp_path: Path, pg_server: str, soulprint_dsn: str
):
    """The header says DB ✗ the moment one query finds the database gone: every verdict on
    the same screen that rests on the database is UNKNOWN from that moment, not ✓ until its
    own interval runs out (it said PASS for 40 s after DB ✗)."""
    await healthy(soulprint_dsn)
    proxy = PgProxy(pg_server)
    await proxy.open()
    database = soulprint_dsn.split("?")[0].rsplit("/", 1)[1]
    path = write_runbook(tmp_path, success_sql=SUCCESS_SQL, observed=True)
    app = CutoverApp(session_for(path, proxy.dsn(database)), probe_poll_s=None)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.refresher.db_up is True and len(app.results) == 3)
            await until(pilot, lambda: "seen 0.7 %" in str(app.query_one("#header").render()))
            await until(pilot, lambda: app.report is not None and app.report.triggers)
            quiet = app.report.triggers[0]
            assert quiet.judgement.holds is False, quiet.judgement  # success_low: quiet
            # Only the errors panel asks again soon; the success answer stays young.
            app.refresher.intervals["errors"] = 0.3
            app.refresher.fetch("errors", force=True)
            await proxy.shut()
            await until(pilot, lambda: app.refresher.db_up is False)
            trigger = app.report.triggers[0]
            assert trigger.judgement.holds is None, trigger.judgement  # UNKNOWN, not quiet
            assert "database unreachable" in trigger.judgement.reason
            header = str(app.query_one("#header").render())
            assert "DB ✗" in header
            assert "seen ? %" in header and "seen 0.7 %" not in header  # the share too
            # the panel's verdict line says the same as the header, on the same screen
            assert "UNKNOWN" in visible_text(app)
    finally:
        await proxy.shut()


async def test_the_shipped_runbook_opens_on_a_healthy_database(tmp_path: Path, soulprint_dsn):
    await healthy(soulprint_dsn)
    from dataclasses import replace

    # not the real journal, nor anything beside it (evidence, the digest's marker)
    book = replace(runbook.load(ROOT / "runbook.toml"), journal_path=tmp_path / "journal.jsonl")
    with RLMServer() as rlm, FakeRender(api_key="rnd_k", logs=rlm.log_lines) as render:
        env = {
            "USER": "ops",
            book.database.dsn_env: soulprint_dsn,
            "RLM_URL": rlm.url,
            "RENDER_API_URL": render.url,
            "RENDER_API_KEY": render.api_key,
            "RENDER_OWNER_ID": render.owner_id,
            "RENDER_RLM_SERVICE_ID": render.service_id,
        }
        session = Session(book, env)
        app = CutoverApp(session, probe_poll_s=None)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: len(app.results) == len(book.queries), timeout=20)
            await until(pilot, lambda: app.results["routed_share"].ok, timeout=20)
            await pilot.pause(0.2)
            assert app.refresher.db_up is True
            ok = [q for q, r in app.results.items() if r.ok]
            assert "success_rate" in ok and "v2_share" in ok and "rlm_ready" in ok
            header = str(app.query_one("#header").render())
            assert "soulprint" in header and "1/5 Prerequisites" in header
            assert "flag ✗" in header  # no VERCEL_TOKEN here: said, not crashed
            # healthy, the last hour: 4 of 39 imports were v2 (3 judged, 1 in flight); the
            # share is derived from the v2 rows and the v1 calls (rows here, log lines on
            # the real service), said with its count and window
            assert "seen 10.3 % of 39 imports, last hour; lags the flag" in header
            assert app.check_action("advance", ()) is None


async def test_a_vercel_advance_shows_patch_readback_redeploy_and_ready_live(
    tmp_path: Path, soulprint_dsn: str
):
    from cutover.demo.vercel_api import FakeVercel

    await healthy(soulprint_dsn)
    path = write_runbook(tmp_path, success_sql=SUCCESS_SQL)
    path.write_text(
        path.read_text().replace(
            '[flag]\nkind = "file"\npath = "flag/percent"',
            '[flag]\nkind = "vercel"\nproject = "shop"\nkey = "NEW_PERCENT"\nredeploy = true',
        )
    )
    with FakeVercel(
        token="tok-e2e-0123456789",
        project="shop",
        key="NEW_PERCENT",
        initial_value="0",
        build_seconds=0.3,
    ) as fake:
        env = {
            "USER": "ops",
            "TEST_DSN": soulprint_dsn,
            "VERCEL_API_URL": fake.url,
            "VERCEL_TOKEN": "tok-e2e-0123456789",
        }
        app = CutoverApp(Session(runbook.load(path), env), probe_poll_s=None)
        sign(app, "prep", "ready", "backup")
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.check_action("advance", ()) is True)
            await pilot.press("a")
            dialog = app.screen
            assert isinstance(dialog, AdvanceScreen)
            await pilot.press(*"10", "enter")
            dialog = await moving(pilot, app, AdvanceScreen)
            await until(pilot, lambda: dialog.done, timeout=20)
            log = "\n".join(dialog.query_one("#progress").lines)
            for step in ("PATCH NEW_PERCENT=10", "read back 10", "redeploy from", "READY"):
                assert step in log, (step, log)
            assert "tok-e2e-0123456789" not in log
            assert fake.live_value("shop", "NEW_PERCENT") == "10"
            assert app.cstate.stage_id == "canary"
