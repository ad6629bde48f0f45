"""The console in team mode (#18): the record on Postgres. Another host's sign-off reaches
the screen by its notification (the journal poll is set to an hour here, so nothing else
could bring it); the store lost is said on screen and the record shown stays, marked stale;
its return is said too."""

from __future__ import annotations

from cutover.judge.session import Session
from cutover.record.store import pgschema
from cutover.runbook import loader as runbook
from cutover.tui.app import CutoverApp
from store_world import CutProxy

from .conftest import until, visible_text, write_runbook


def said(app: CutoverApp, words: str) -> bool:
    """Among the console's notifications (a toast wraps its lines on screen)."""
    return any(words in n.message for n in app._notifications)


STORE = '\n[store]\nkind = "postgres"\ndsn_env = "TEST_STATE"\nschema = "cutover"\n'


async def test_another_hosts_signoff_shows_and_a_lost_store_is_said(tmp_path, empty_dsn):
    path = write_runbook(tmp_path)
    path.write_text(path.read_text() + STORE)
    pgschema.init_now(empty_dsn, "cutover", None, str)
    proxy = CutProxy(empty_dsn)
    env = {"USER": "ops", "TEST_DSN": "", "TEST_STATE": proxy.dsn("pw-not-shown")}
    book = runbook.load(path)
    app = CutoverApp(Session(book, env), probe_poll_s=None, journal_poll_s=3600)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await until(pilot, app.session.store.listening)
            other = Session(book, {**env, "USER": "bo"})
            other.journal.append(
                "signoff", stage="prep", step="ready", visit=1, note="", override=False, probe=None
            )
            await until(pilot, lambda: "ready" in app.cstate.signoffs)
            assert app.cstate.signoffs["ready"].actor.startswith("bo")
            # Another host takes the move lock: the console names who, as it happens.
            with other.journal.action_lock("advance to 10 %"):
                await until(pilot, lambda: said(app, "moving now: bo"))
                assert said(app, "'advance to 10 %'")

            proxy.cut()
            await until(pilot, lambda: app.session.store.stale is not None, timeout=30)
            await until(pilot, lambda: said(app, "the state store cannot be reached"))
            assert "ready" in app.cstate.signoffs  # the last record read stays on screen
            assert "pw-not-shown" not in visible_text(app)

            proxy.start()

            def back() -> bool:
                app._store_news()  # the next journal poll, without waiting an hour for it
                return app.session.store.stale is None

            await until(pilot, back, timeout=30)
            await until(pilot, lambda: said(app, "the state store is back"))
    finally:
        proxy.cut()
