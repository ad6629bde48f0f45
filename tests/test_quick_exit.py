"""A command's end: the interpreter's last collections, which walk every object the process
made, skip them (cli/startup.py freeze_at_exit): ~25 ms of every command's exit."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import atexit, contextlib, gc, io, json
from cutover.cli.main import main
before = atexit._ncallbacks()
with contextlib.redirect_stdout(io.StringIO()):
    main(["schema"])
    main(["schema"])  # the tests run main() many times in one process
registered = atexit._ncallbacks() - before
frozen_before = gc.get_freeze_count()
atexit._run_exitfuncs()
print(json.dumps([registered, frozen_before, gc.get_freeze_count()]))
"""


def test_a_command_s_objects_are_frozen_when_the_process_exits_not_before():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    registered, frozen_before, frozen_at_exit = json.loads(done.stdout)
    assert registered == 1  # once per process
    assert frozen_before == 0  # the command itself runs with the collector as it was
    assert frozen_at_exit > 10_000  # then the interpreter's last collections skip them
