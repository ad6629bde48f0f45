"""The suite scrubs what a demo shell exports. Once, `make test` in a shell that had sourced
`.cutover/demo.env` failed: the tests inherited RENDER_*, VERCEL_*, RLM_* and CUTOVER_*."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import os, conftest
conftest.pytest_configure(None)
leaked = sorted(n for n in os.environ if n.startswith(("VERCEL_", "RENDER_", "RLM_", "CUTOVER_")))
print(" ".join(leaked))
"""


def test_the_suite_starts_without_what_a_demo_shell_exports():
    demo_shell = {
        **os.environ,
        "CUTOVER_DATABASE_URL": "postgresql://demo@127.0.0.1:1/x",
        "CUTOVER_DEMO_CONTROL_URL": "http://127.0.0.1:1",
        "VERCEL_API_URL": "http://127.0.0.1:1",
        "VERCEL_TOKEN": "demo",
        "RENDER_API_URL": "http://127.0.0.1:1",
        "RLM_URL": "http://127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=demo_shell,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["CUTOVER_CACHE_DIR"]  # the run's own, set after scrubbing
