"""For the whole run, doctests included: the suite is hermetic. A shell that sourced the
demo's `.cutover/demo.env` (as the README says to) exports RENDER_*, VERCEL_*, RLM_* and
CUTOVER_* variables; the tests must not inherit them (they failed when they did). And
cutover's memo of vetted query texts (vetted.py) lives in a folder of this run's own, never
in the home folder of whoever runs the tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time

INHERITED = ("CUTOVER_", "VERCEL_", "RENDER_", "RLM_")


def pytest_configure(config: object) -> None:
    for name in [n for n in os.environ if n.startswith(INHERITED)]:
        del os.environ[name]
    folder = tempfile.mkdtemp(prefix="cutover-cache-")
    os.environ["CUTOVER_CACHE_DIR"] = folder
    # Gone at exit (a machine running the suite daily collected thousands), after the memos'
    # own exit handlers have written to it: registered earlier, this one runs later.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def pytest_unconfigure(config: object) -> None:
    """The tmux sockets of the tests' terminals whose server has ended (tmux leaves the file
    behind): a machine that runs the suite every day must not collect thousands of them."""
    import glob
    import subprocess

    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    for path in glob.glob(os.path.join(base, f"tmux-{os.getuid()}", "cutover-*")):
        with contextlib.suppress(OSError):
            if time.time() - os.stat(path).st_mtime < 600:
                continue  # a terminal another run may be starting right now
        try:
            alive = subprocess.run(
                ["tmux", "-L", os.path.basename(path), "list-sessions"],
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return  # no tmux here: nothing of ours to sweep
        if alive.returncode != 0:
            with contextlib.suppress(OSError):
                os.unlink(path)
