"""A database that takes the connection and then never answers (a firewall that blackholes,
a server wedged before its first word), at the console's start and under a running console:
the console waits on it in no key (the rollback dialog opens at once), and once the driver's
wait has run out the outage is said in words (DB ✗, how long nothing answered), never shown
as a quiet console."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from tests.tui.pgproxy import PgProxy

from cutover.sources.first_answers import ask_for_console
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import RollbackScreen
from tui.conftest import session_for, until, visible_text, write_runbook


class SilentHost:
    """Listens on loopback, accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed
                return
            self.held.append(conn)

    def dsn(self) -> str:
        return f"postgresql://ops@127.0.0.1:{self.port}/nowhere"

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


async def test_a_silent_database_at_start_holds_back_no_key_and_is_said(tmp_path: Path) -> None:
    host = SilentHost()
    session = session_for(write_runbook(tmp_path), host.dsn())
    first = ask_for_console(session)
    assert first is not None
    app = CutoverApp(session, probe_poll_s=None, first_answers=first)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            # The thread has connected (the host took it) and waits for the server's word.
            await until(pilot, lambda: len(host.held) >= 1)
            await pilot.press("ctrl+r")  # the rollback dialog, while connecting
            await until(pilot, lambda: isinstance(app.screen, RollbackScreen), timeout=2)
            # Open while the first answers still wait on the host (no clock read: the
            # dialog came before the connect timeout gave any query an answer).
            assert app.results.get("success") is None, "the dialog waited for the database"
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, RollbackScreen))
            # Then the outage is said, not a quiet screen.
            await until(pilot, lambda: app.refresher.db_up is False, timeout=20)
            result = app.results["success"]
            assert result.error == (
                "database unreachable: no answer in 5 s (the network or the server went silent)"
            ), result.error
            assert "DB ✗" in visible_text(app)
    finally:
        await asyncio.to_thread(first.close)
        host.close()


async def test_a_database_that_goes_silent_mid_session_is_said_in_words(
    tmp_path: Path, pg_server: str, empty_dsn: str
) -> None:
    """The network goes silent under a running console: the queries asked into the silence
    are given up after the statement timeout and its grace, and the operator reads that
    nothing answered (it read "database unreachable: " and nothing after), with the trigger
    UNKNOWN and advance refused; the rollback dialog opens meanwhile."""
    proxy = PgProxy(pg_server)
    await proxy.open()
    session = session_for(write_runbook(tmp_path), proxy.dsn(urlsplit(empty_dsn).path[1:]))
    app = CutoverApp(session, probe_poll_s=None)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            answered = app.results.get
            await until(pilot, lambda: answered("success") and not answered("success").error)
            proxy.freeze()
            await pilot.press("r")  # every query asked now, into the silence
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, RollbackScreen), timeout=2)
            await pilot.press("escape")
            await until(pilot, lambda: answered("success").error is not None, timeout=30)
            await until(pilot, lambda: app.refresher.db_up is False)
            said = answered("success").error
            assert said == (
                "database unreachable: no answer in 10 s (the network or the server went silent)"
            ), said
            screen = visible_text(app)
            assert "DB ✗" in screen
            assert "UNKNOWN trigger success_low" in screen
            assert "advance ✗ refused" in screen
    finally:
        await proxy.shut()
