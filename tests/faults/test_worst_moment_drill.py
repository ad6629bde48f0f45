"""The worst moment, in a real terminal (tmux): the console in front of an operator when a
trigger reads ∞, when the journal cannot be written, and when an advance is waiting on a
long build. Each once broke exactly then: the console exited 2 on the infinite value, the
rollback was refused with "Operation not permitted", the rollback waited behind the build."""

from __future__ import annotations

import sys
import time

import pytest

from faults.test_console_hangup import Terminal, exit_status
from faults.test_infinite_values import runbook_with_infinity
from faults.test_rollback_journal_unwritable import immutable
from moves_world import KEY, PLAIN_STAGES, PROJECT, cli, environ, fake_vercel, journal
from moves_world import write_runbook as moves_runbook
from test_e2e_tmux import wait_for


@pytest.fixture
def terminal():
    import contextlib
    import os
    import signal

    term = Terminal(f"cutover-worst-{os.getpid()}-{os.urandom(3).hex()}")
    yield term
    term.tmux("kill-server")
    for pid in reversed(term.started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def console(terminal: Terminal, book, env):
    status = terminal.open(
        book.parent, env, sys.executable, "-m", "cutover.cli", "--runbook", str(book)
    )
    return status


def test_a_trigger_reading_infinity_fires_on_screen_and_the_console_stays_up(
    tmp_path, terminal, empty_dsn
):
    book = runbook_with_infinity(tmp_path, "0")
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        # At 10 %, the backlog overflows: numeric 'Infinity'.
        (tmp_path / "queries" / "backlog.sql").write_text(
            "SELECT 'Infinity'::numeric AS backlog;\n"
        )
        status = console(terminal, book, env)

        def seen() -> str:
            return f"{terminal.screen()}\n(exit status: {exit_status(status)})"

        wait_for("the fired trigger", lambda: "FIRED" in terminal.screen(), 90, seen)
        assert "∞" in terminal.screen()
        terminal.keys("r")  # evaluated and recorded again: the same open run grows
        time.sleep(2)
        assert exit_status(status) is None, terminal.screen()
        assert (
            "Traceback" not in terminal.screen() and "not JSON compliant" not in terminal.screen()
        )


def test_ctrl_r_y_with_an_immutable_journal_takes_traffic_to_0(tmp_path, terminal):
    book = moves_runbook(tmp_path, PLAIN_STAGES)
    with fake_vercel(build_seconds=0.5) as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        console(terminal, book, env)
        wait_for("the console", lambda: "Canary" in terminal.screen(), 60, terminal.screen)
        with immutable(tmp_path / "journal.jsonl"):
            terminal.keys("C-r")
            wait_for("the dialog", lambda: "EMERGENCY ROLLBACK" in terminal.screen(), 15)
            terminal.keys("y")
            wait_for("traffic at 0 %", lambda: fake.live_value(PROJECT, KEY) == "0", 30)
            wait_for(
                "the spill said",
                lambda: "journal cannot be written" in terminal.screen(),
                15,
                terminal.screen,
            )
            wait_for("the rollback's outcome", lambda: "verified" in terminal.screen(), 30)
    ran = cli(book, env, "status")
    assert "folded rollback.done" in ran.stderr
    assert journal(book)[-1]["kind"] == "rollback.done"


def test_ctrl_r_y_during_an_advance_waiting_on_a_long_build_does_not_wait_for_it(
    tmp_path, terminal, empty_dsn
):
    book = moves_runbook(tmp_path, PLAIN_STAGES)
    with fake_vercel(build_seconds=0.3) as fake:
        env = environ(fake, dsn=empty_dsn)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        fake.build_seconds = 300  # the advance to 50 % would wait five minutes
        console(terminal, book, env)
        wait_for("the console", lambda: "advance ✓" in terminal.screen(), 60, terminal.screen)

        def dialog() -> bool:
            if "Type 50" not in terminal.screen():
                terminal.keys("a")  # again, should the first press land before the keys did
                return False
            return True

        wait_for("the advance dialog", dialog, 15, terminal.screen)
        terminal.keys("5", "0", "Enter")
        wait_for("the build", lambda: journal(book)[-1]["kind"] == "advance.intent", 30)
        fake.build_seconds = 0.3  # the rollback's own deployment builds quickly
        started = time.monotonic()
        terminal.keys("C-r")
        wait_for("the dialog", lambda: "EMERGENCY ROLLBACK" in terminal.screen(), 15)
        terminal.keys("y")
        wait_for("traffic at 0 %", lambda: fake.live_value(PROJECT, KEY) == "0", 60)
        took = time.monotonic() - started
        events = journal(book)
    assert took < 60, took  # not the five-minute build
    advance = [e for e in events if e["kind"] == "advance.intent"][-1]
    rollback = [e for e in events if e["kind"] == "rollback.intent"][-1]
    assert rollback["supersedes"] == advance["action"]
