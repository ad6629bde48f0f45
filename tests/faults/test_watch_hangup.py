"""A watcher run in a terminal that goes away (a dropped SSH session, a killed tmux) stops
cleanly: it gets SIGHUP, its last lines go to detached.log beside the journal instead of
to the dead terminal, and it exits 0."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from watch_world import metric_runbook

SHELL = Path(__file__).resolve().parent / "forwarding_shell.py"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def tmux(socket: str, *args: str) -> str:
    done = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=20)
    return done.stdout


def test_a_watcher_whose_terminal_hangs_up_stops_cleanly_into_detached_log(
    tmp_path: Path,
) -> None:
    book = metric_runbook(tmp_path)
    status = tmp_path / "status"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "USER": "tester",
        # Nobody listens here: the watcher runs on through the outage all the same.
        "CUTOVER_DATABASE_URL": "postgresql://cutover@127.0.0.1:9/soulprint",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = [sys.executable, str(SHELL), str(status), sys.executable, "-m", "cutover.cli"]
    command += ["--runbook", str(book), "watch"]
    line = f"cd {shlex.quote(str(tmp_path))} && exec env {exports} {shlex.join(command)}"
    socket = f"cutover-watch-hangup-{os.getpid()}"
    tmux(socket, "new-session", "-d", "-s", "watch", "-x", "160", "-y", "30", line)
    try:
        deadline = time.monotonic() + 60
        while "database outage" not in tmux(socket, "capture-pane", "-p", "-t", "watch"):
            assert time.monotonic() < deadline, tmux(socket, "capture-pane", "-p", "-t", "watch")
            time.sleep(0.2)

        tmux(socket, "kill-session", "-t", "watch")  # the SSH link drops

        deadline = time.monotonic() + 60
        while not (status.exists() and status.read_text().strip()):
            assert time.monotonic() < deadline, "the watcher did not exit"
            time.sleep(0.2)
    finally:
        tmux(socket, "kill-server")

    assert status.read_text().strip() == "0"
    detached = (tmp_path / "detached.log").read_text()
    assert detached.splitlines()[-1].endswith("watcher stopped (SIGHUP)")
    assert "Traceback" not in detached
