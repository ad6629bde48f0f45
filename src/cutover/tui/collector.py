"""Python's cyclic garbage collector, told what lives as long as the console does.

Once the whole screen has been built, one collection clears start-up garbage and
`gc.freeze()` moves what is left (Textual's and Rich's modules, the widgets, styles and the
runbook) out of the collector's sight: later full passes walk only what came after, and what
is frozen is still freed when nothing refers to it.

The full passes keep their default pace. They were once made ten times rarer, to hide the
cost of the garbage the console made every second (a full layout of every panel, on screen
or not, each leaving its map in a reference cycle: ~14,000 objects a second with the shipped
runbook at 1 s refresh); the garbage then piled up for the rarer passes to walk (one
~200,000 objects long, 728 ms). The console no longer makes it (tui/onscreen: work out of
sight is skipped; tui/refresh: a plain task per fetch, not a worker): bench/garbage.py
measures what is left against a bare Textual app.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect once and freeze what survived; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
