"""Python's cyclic garbage collector, told what lives as long as the console does.

Why: with every panel refreshing each second, most event-loop stalls over 50 ms were the
collector's full passes (measured: 23 of 25 in 30 s), each walking every object the console
keeps for its whole life: Textual's and Rich's modules, the widgets, styles and the runbook.
Once the whole screen has been built, one collection clears start-up garbage and `gc.freeze()`
moves what is left out of the collector's sight: later passes walk only what came after (the
rows and render caches of the moment), and what is frozen is still freed when nothing refers
to it. Textual pauses the collector while it scrolls for the same reason.
"""

from __future__ import annotations

import gc

# Full passes after the freeze walk what the console keeps for a while (results, Textual's
# render caches) and find next to nothing: what it lets go of is freed by reference counting.
# With the default (10) they came about once a second at 1 s refresh, 10-56 ms each; at 100,
# one in ten of those.
FULL_PASS_EVERY = 100  # collections of the middle generation per full pass


def settle() -> int:
    """Collect once, freeze what survived, and make full passes rarer; returns how many
    objects are now frozen."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_PASS_EVERY)
    return gc.get_freeze_count()
