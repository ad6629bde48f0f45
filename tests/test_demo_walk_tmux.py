"""The README's walk, done in a real terminal as whoever runs the suite (root in containers
and CI, where the demo's Postgres runs as a user of its own): `cutover demo` in tmux, a
second shell that sourced demo.env signs and advances, a knob breaks v2, the success
trigger fires on the console, ctrl+r y rolls back, the knob mends v2, and the walk goes on
through every stage to "✓ CUTOVER COMPLETE". The data runs on the demo's clock, so the
broken imports leave the 24 h window in seconds and the canary passes again.

The shipped runbook's demo holds add up to ~7 minutes (24 s + 48 s + 168 s + 168 s); here
the same runbook runs with 5 h holds and `after`s (5 s in the demo) and 3 s refreshes, so
the suite walks it in a couple of minutes. The full-length walk is measured by hand
(tests/demo_walk.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from cutover.demo.database import pgdata_for
from demo_walk import BROKEN_BY, CUTOVER, Shell, walk
from test_e2e_tmux import REPO, Terminal, read_env_file, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def quick_runbook(folder: Path) -> Path:
    """The shipped runbook and queries, with every hold and `after` 5 h and every query
    refreshed each 3 s: the same stages, gates, triggers and SQL, a shorter wait."""
    text = (REPO / "runbook.toml").read_text(encoding="utf-8")
    text = re.sub(r'^(\s*(?:hold|after)\s*=\s*)"(?!0s)[^"]+"', r'\1"5h"', text, flags=re.M)
    text = re.sub(r'^(\s*refresh\s*=\s*)"[^"]+"', r'\1"3s"', text, flags=re.M)
    text = re.sub(r'^(\s*checkpoint\s*=\s*)"[^"]+"', r'\1"60h"', text, flags=re.M)
    book = folder / "runbook.toml"
    book.write_text(text, encoding="utf-8")
    (folder / "queries").symlink_to(REPO / "queries")
    return book


@pytest.fixture
def terminal():
    term = Terminal(f"cutover-walk-{os.getpid()}-{os.urandom(3).hex()}")
    yield term
    term.tmux("kill-server")


def test_the_readme_walk_demo_break_recover_complete_in_tmux(tmp_path, terminal):
    book = quick_runbook(tmp_path)
    demo_dir = tmp_path / "demo"
    command = (
        f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(CUTOVER)} --runbook "
        f"{shlex.quote(str(book))} demo --dir {shlex.quote(str(demo_dir))} --build-seconds 0.5"
        "; echo DEMO-EXITED $?; sleep 30"
    )
    terminal.tmux("new-session", "-d", "-s", "demo", "-x", "160", "-y", "48", command)
    env_file = tmp_path / "demo.env"
    wait_for("demo.env", env_file.exists, timeout=180)
    wait_for("the console", lambda: "Prerequisites" in terminal.screen(), 60, terminal.screen)
    said: list[str] = []
    shell = Shell({**read_env_file(env_file), "USER": "walk"}, said.append)
    fired_on_screen: list[str] = []

    def ctrl_r_y() -> None:
        # What the operator saw: the trigger the knob fired, on the console.
        def fired() -> bool:
            screen = terminal.screen()
            return "CRITICAL TRIGGER FIRED" in screen and BROKEN_BY in screen

        wait_for("the fired trigger on the console", fired, 60, terminal.screen)
        fired_on_screen.append(terminal.screen())
        terminal.keys("C-r")
        wait_for("the dialog", lambda: "EMERGENCY ROLLBACK" in terminal.screen(), 15)
        terminal.keys("y")
        wait_for(
            "the rollback verified",
            lambda: "rollback to 0 % verified" in terminal.screen(),
            60,
            terminal.screen,
        )
        terminal.keys("Escape")

    try:
        # The first canary's hold is not waited for (10 s): the second must hold anyway.
        walk(shell, rollback=ctrl_r_y, budget_s=420, hold_first=False)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe walk so far:\n" + "\n".join(said)) from None
    assert fired_on_screen, "\n".join(said)
    print("\n".join(said))  # the walk's steps and times, for -rP
    wait_for(
        "the console to say the cutover is complete",
        lambda: "CUTOVER COMPLETE" in terminal.screen(),
        30,
        terminal.screen,
    )
    events = [json.loads(line) for line in (demo_dir / "journal.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert "rollback.done" in kinds
    # The canary was entered twice, before the break and after the recovery (on the same
    # 24 h window the broken imports had to leave), and every advance was verified.
    entered = [e.get("to_stage") for e in events if e["kind"] == "advance.intent"]
    assert entered.count("canary") == 2, entered
    assert kinds.count("advance.done") == len(entered), kinds
    terminal.keys("q")
    wait_for("the demo to exit", lambda: "DEMO-EXITED 0" in terminal.screen(), 30)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"postgres -D {pgdata_for(demo_dir)}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""
