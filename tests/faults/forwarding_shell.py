"""Stands in for the login shell over SSH: runs a command, passes SIGHUP and SIGTERM on to it
as bash does when its terminal hangs up, and writes the command's exit status to a file.

    python forwarding_shell.py STATUS_FILE COMMAND [ARG…]
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def main() -> None:
    status_file, command = Path(sys.argv[1]), sys.argv[2:]
    child = subprocess.Popen(command)

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    status_file.write_text(f"{code}\n")


if __name__ == "__main__":
    main()
