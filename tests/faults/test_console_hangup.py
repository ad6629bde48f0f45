"""A dropped SSH session (SIGHUP) or a SIGTERM must not cancel an emergency rollback in
flight: the console finishes it, journals it, then exits 129 / 143. And a console whose
event loop is stuck still leaves on SIGHUP. Driven for real: the console in tmux, the demo's
Vercel-compatible API with a slow build, the terminal killed from outside."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

import pytest

import test_e2e_tmux as tmux_e2e
from moves_world import KEY, PROJECT, cli, environ, fake_vercel, journal, write_runbook
from test_e2e_tmux import wait_for

HERE = Path(__file__).resolve().parent
SHELL = HERE / "forwarding_shell.py"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Terminal(tmux_e2e.Terminal):
    """A tmux server whose one window runs a command behind the forwarding shell."""

    def __init__(self, socket: str):
        super().__init__(socket)
        self.started: list[int] = []  # the forwarding shell, then the console

    def open(self, folder: Path, env: dict[str, str], *command: str) -> Path:
        """Start the command in a 140×40 window; the file its exit status will be in."""
        status = folder / "status"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k != "TMUX")
        line = f"cd {shlex.quote(str(folder))} && exec env {exports} " + shlex.join(
            [sys.executable, str(SHELL), str(status), *command]
        )
        self.tmux("new-session", "-d", "-s", "demo", "-x", "140", "-y", "40", line)
        shell = int(self.tmux("display", "-p", "-t", "demo", "#{pane_pid}").strip())
        children = Path(f"/proc/{shell}/task/{shell}/children")
        child = wait_for("the console to start", lambda: children.read_text().split(), 10)
        self.started = [shell, int(child[0])]
        return status

    @property
    def console_pid(self) -> int:
        return self.started[1]


@pytest.fixture
def terminal():
    term = Terminal(f"cutover-hangup-{os.getpid()}")
    yield term
    term.tmux("kill-server")
    for pid in reversed(term.started):  # a console that did not leave (the fault) ends here
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def exit_status(status: Path) -> int | None:
    text = status.read_text().strip() if status.exists() else ""
    return int(text) if text else None


@pytest.mark.parametrize(
    ("how", "code"), [("hang up the terminal", 129), ("SIGTERM", 143)], ids=["sighup", "sigterm"]
)
def test_an_emergency_rollback_in_flight_finishes_when_the_terminal_dies(
    tmp_path, terminal, how, code
):
    # A rollback that builds (an instant one is over long before the terminal could die).
    book = write_runbook(tmp_path, flag='rollback = "redeploy"')
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        advanced = cli(book, env, "advance", "--confirm", "10")
        assert advanced.code == 0, advanced.output
        assert fake.live_value(PROJECT, KEY) == "10"
        fake.build_seconds = 6  # the rollback's redeploy builds slowly
        status = terminal.open(
            tmp_path, env, sys.executable, "-m", "cutover.cli", "--runbook", str(book)
        )
        wait_for("the console", lambda: "Canary" in terminal.screen(), 60, terminal.screen)
        deployments = len(fake.project.deployments)
        terminal.keys("C-r")
        wait_for("the rollback dialog", lambda: "EMERGENCY ROLLBACK" in terminal.screen(), 15)
        terminal.keys("y")
        wait_for(
            "the rollback's redeploy to start building",
            lambda: len(fake.project.deployments) > deployments,
            30,
            terminal.screen,
        )
        assert fake.live_value(PROJECT, KEY) == "10"  # mid-redeploy: traffic still at 10 %
        kinds = [e["kind"] for e in journal(book)]
        assert kinds[-1] == "rollback.intent", kinds

        if how == "SIGTERM":
            os.kill(terminal.console_pid, signal.SIGTERM)
        else:
            terminal.tmux("kill-session", "-t", "demo")  # the SSH link drops

        wait_for("the console to exit", lambda: exit_status(status) is not None, 60)
        assert exit_status(status) == code
        assert journal(book)[-1]["kind"] == "rollback.done", [e["kind"] for e in journal(book)]
        assert fake.live_value(PROJECT, KEY) == "0"


def test_a_console_whose_loop_is_stuck_still_exits_when_its_terminal_hangs_up(tmp_path, terminal):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        status = terminal.open(
            tmp_path,
            environ(fake),
            sys.executable,
            str(HERE / "blocking_console.py"),
            str(book),
        )
        wait_for("the console", lambda: "Off" in terminal.screen(), 60, terminal.screen)
        terminal.keys("x")
        wait_for("the loop to be stuck", (tmp_path / "blocked").exists, 15)
        terminal.tmux("kill-session", "-t", "demo")
        wait_for("the console to exit", lambda: exit_status(status) is not None, 30)
        assert exit_status(status) == 129


BIG_QUERY = """\
[queries.big]
title = "A million rows"
file = "queries/big.sql"
refresh = "5s"

"""


def test_ctrl_r_opens_the_rollback_dialog_beside_a_million_row_panel(tmp_path, terminal, empty_dsn):
    book = write_runbook(tmp_path)
    (tmp_path / "queries" / "big.sql").write_text(
        "-- A million rows\n"
        "SELECT g AS n, md5(g::text) AS hash FROM generate_series(1, 1000000) AS g;\n"
    )
    book.write_text(book.read_text().replace("[queries.ok]", BIG_QUERY + "[queries.ok]"))
    with fake_vercel(build_seconds=0.2) as fake:
        advanced = cli(book, environ(fake), "advance", "--confirm", "10")
        assert advanced.code == 0, advanced.output
        terminal.open(
            tmp_path,
            environ(fake, dsn=empty_dsn),
            sys.executable,
            "-m",
            "cutover.cli",
            "--runbook",
            str(book),
        )
        wait_for(
            "the big panel, capped",
            lambda: "first 1,000 of ≥ 1,001 rows" in terminal.screen(),
            60,
            terminal.screen,
        )
        terminal.keys("C-r")
        wait_for(
            "the rollback dialog",
            lambda: "EMERGENCY ROLLBACK" in terminal.screen(),
            10,
            terminal.screen,
        )
        terminal.keys("y")
        wait_for("the rollback", lambda: fake.live_value(PROJECT, KEY) == "0", 30, terminal.screen)
        wait_for("the journal", lambda: journal(book)[-1]["kind"] == "rollback.done", 30)


NOTIFY = """
[[notify]]
kind = "webhook"
url_env = "CUTOVER_HOOK"
"""


def test_a_detached_console_logs_its_retrying_rollback_and_tells_every_webhook(tmp_path, terminal):
    # Once, a console that lost its terminal mid-rollback with the platform gone retried for
    # 20 minutes with no log and nobody told.
    from watch_world import receiver

    book = write_runbook(tmp_path)
    book.write_text(book.read_text() + NOTIFY)
    with fake_vercel(build_seconds=0.2) as fake, receiver() as hook:
        env = {**environ(fake), "CUTOVER_HOOK": hook.url}
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        terminal.open(tmp_path, env, sys.executable, "-m", "cutover.cli", "--runbook", str(book))
        wait_for("the console", lambda: "Canary" in terminal.screen(), 60, terminal.screen)
        fake.fail_next(503, "unavailable", "the platform is down", times=10_000)
        terminal.keys("C-r")
        wait_for("the rollback dialog", lambda: "EMERGENCY ROLLBACK" in terminal.screen(), 15)
        terminal.keys("y")
        wait_for("a failed attempt", lambda: "attempt 1 failed" in terminal.screen(), 30)
        terminal.tmux("kill-session", "-t", "demo")  # the SSH link drops
        log = tmp_path / "detached.log"
        wait_for(
            "a retry in the log",
            lambda: log.exists() and "attempt 2 failed" in log.read_text(),
            60,
        )
        wait_for("the webhook", lambda: "retrying detached" in hook.received(), 30)
        text = log.read_text()
        assert "the console's terminal hung up; the rollback in flight goes on detached" in text
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        assert fake.token not in text + hook.received()
        os.kill(terminal.console_pid, signal.SIGTERM)
        os.kill(terminal.console_pid, signal.SIGTERM)  # the second stops even a rollback
