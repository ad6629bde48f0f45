"""`cutover demo` where there is no runbook, in a shell without XDG_RUNTIME_DIR (su, sudo,
cron): it said "FileNotFoundError: [Errno 2] …" once the demo's world had started and
stopped again, under a RuntimeDirWarning from a library's import. Now the problem is said
as every command says it, before anything starts, and no library's warning is printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("team", [False, True], ids=["demo", "team demo"])
def test_a_demo_without_a_runbook_says_so_before_anything_starts(tmp_path, team):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUTOVER_", "XDG_"))}
    argv = [sys.executable, "-m", "cutover.cli", "demo", "--headless"]
    done = subprocess.run(
        argv + (["--team"] if team else []),
        cwd=tmp_path,
        env={**env, "USER": "tester"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "runbook.toml:1:1: no runbook here; pass --runbook PATH" in said, said
    assert "Error" not in said and "Warning" not in said and "Traceback" not in said, said
    assert "starting the world" not in said, said
    assert list(tmp_path.iterdir()) == [], "something was started or written"
