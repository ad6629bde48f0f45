"""The real console (run_app: its signal handling and all) with one key more, `x`, that
keeps the event loop busy for good, as a quadratic table refresh once did (it writes the
file `blocked` beside the runbook first).

    python blocking_console.py RUNBOOK
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType

from cutover.judge.session import Session
from cutover.runbook import loader as runbook
from cutover.tui import app
from cutover.tui.app import CutoverApp, run_app


class BlockingConsole(CutoverApp):
    CSS_PATH = str(Path(app.__file__).with_name("cutover.tcss"))  # else relative to this file
    BINDINGS: ClassVar[list[BindingType]] = [
        *CutoverApp.BINDINGS,
        Binding("x", "block", "block", priority=True),
    ]

    def action_block(self) -> None:
        (self.runbook.folder / "blocked").write_text("the loop is stuck from now on\n")
        n = 0
        while True:  # pure Python: only a signal.signal handler can get a word in
            n += 1


if __name__ == "__main__":
    session = Session(runbook.load(sys.argv[1]), dict(os.environ))
    sys.exit(run_app(BlockingConsole(session)))
