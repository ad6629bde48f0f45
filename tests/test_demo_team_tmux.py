"""`cutover demo --team` in a real terminal: the world starts with its record on the demo's
Postgres, two consoles open side by side in tmux as two operators (ana left, ben right); ana
signs a step off with the keys an operator would press and ben's console shows it, from the
store (no file journal is written); q in both ends the demo, leaving nothing running. Without
tmux, `--team` says so in one line and exits 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from cutover.demo.database import pgdata_for
from test_e2e_tmux import CUTOVER, REPO, Terminal, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@pytest.fixture
def terminal():
    term = Terminal(f"cutover-team-{os.getpid()}-{os.urandom(3).hex()}")
    yield term
    term.tmux("kill-server")


def test_a_signoff_in_anas_console_shows_in_bens(tmp_path, terminal):
    demo_dir = tmp_path / "demo"
    said = tmp_path / "said.txt"
    with open(said, "w") as out:
        demo = subprocess.Popen(
            [
                *(CUTOVER, "--runbook", str(REPO / "runbook.toml"), "demo", "--team"),
                *("--dir", str(demo_dir), "--tmux-socket", terminal.socket),
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("the team session", lambda: "team" in terminal.tmux("ls"), 180, said.read_text)

        def panes() -> list[str]:
            # Pane ids, not indexes: once one console quits, the other's index changes.
            return terminal.tmux("list-panes", "-t", "team", "-F", "#{pane_id}").split()

        # The session opens with ana's pane; ben's is split off it a moment later.
        wait_for("both consoles' panes", lambda: len(panes()) == 2, 30, said.read_text)
        ana, ben = panes()

        def screen(pane: str) -> str:
            return terminal.tmux("capture-pane", "-p", "-t", pane)

        for pane in (ana, ben):
            wait_for("a console", lambda p=pane: "Prerequisites" in screen(p), 60, said.read_text)
        # Printed first: the two consoles as commands, for an operator without tmux.
        printed = said.read_text()
        assert "ana: source demo.env && env -u SUDO_USER USER=ana cutover tui" in printed
        assert "USER=ben cutover tui" in printed

        step = "The RLM with"  # the first step of Prerequisites, unsigned on both
        assert f"☐ {step}" in screen(ana) and f"☐ {step}" in screen(ben)
        terminal.tmux("send-keys", "-t", ana, "s")
        shown = lambda: screen(ana)  # noqa: E731
        wait_for("ana's sign-off dialog", lambda: "Signed by ana" in shown(), 15, shown)
        terminal.tmux("send-keys", "-t", ana, "deploy seen live", "Enter")
        wait_for(
            "ana's sign-off on ben's console",
            lambda: f"✓ {step}" in screen(ben) and "journal: ana" in screen(ben),
            15,
            lambda: terminal.tmux("list-windows") + screen(ben),
        )
        # It came from the store: the demo's files journal was never written.
        assert not (demo_dir / "journal.jsonl").exists()

        terminal.tmux("send-keys", "-t", ana, "q")
        wait_for("ana's console to close", lambda: ana not in terminal.tmux("list-panes"), 15)
        terminal.tmux("send-keys", "-t", ben, "q")
        assert demo.wait(timeout=60) == 0, said.read_text()
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(timeout=60)
    assert "the world is stopped" in said.read_text()
    assert terminal.tmux("ls") == ""  # the demo's tmux server is gone with it
    leftovers = subprocess.run(
        ["pgrep", "-f", f"postgres -D {pgdata_for(demo_dir)}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""


def test_without_tmux_the_team_demo_says_so_in_one_line(tmp_path):
    bare = tmp_path / "bin"  # a PATH holding no tmux
    bare.mkdir()
    ran = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "demo", "--team", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env={**os.environ, "PATH": str(bare)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 2
    assert ran.stderr.strip().count("\n") == 0
    assert "tmux is not installed" in ran.stderr
    assert "--team --headless" in ran.stderr  # and what to do instead
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_a_failing_tmux_command_is_said_in_tmuxs_words_without_the_pane_commands():
    from cutover.demo.team import Tmux, TmuxFailed

    tmux = Tmux(f"cutover-team-absent-{os.getpid()}-{os.urandom(3).hex()}")
    with pytest.raises(TmuxFailed) as failed:
        tmux("split-window", "-h", "-t", "team", ". /secret/demo.env && cutover tui")
    said = str(failed.value)
    assert said.startswith("tmux split-window failed: "), said
    assert "/secret/demo.env" not in said and "CalledProcessError" not in said, said
    assert len(said) > len("tmux split-window failed: "), said
    assert not tmux.running()  # check=False: an answer, not an error
