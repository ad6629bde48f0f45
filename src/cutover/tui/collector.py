"""Python's cyclic garbage collector, told what lives as long as the console does.

Once the whole screen has been built, one collection clears start-up garbage and
`gc.freeze()` moves what is left (Textual's and Rich's modules, the widgets, styles and the
runbook) out of the collector's sight: later full passes walk only what came after, and what
is frozen is still freed when nothing refers to it.

While the console starts (until the whole screen is built and settle() runs, or
PAUSED_AT_MOST_S) the collector does not run at all: start-up allocates most of what the
console will ever hold, and each pass over it then was work in the first frame's way (a full
pass of ~30 ms and ten young ones of 1-4 ms before the first full frame). Textual pauses it
the same way during a smooth scroll. What start-up leaves as garbage is collected by
settle()'s one pass.

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

# However long start-up takes (a database that does not answer holds the rest of the screen
# back), the collector runs again after this long.
PAUSED_AT_MOST_S = 5.0


def pause_for_start() -> None:
    """Freeze what is loaded (modules, the runbook: it lives as long as the console) and hold
    the collector until settle() or resume()."""
    gc.freeze()
    gc.disable()


def resume() -> None:
    gc.enable()


def settle() -> int:
    """Collect once and freeze what survived; returns how many objects are now frozen.
    (The collector paused for the start is resumed by the console first: app._settle.)"""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
