"""Which of the console's panels the operator can see now, so that work out of sight costs
nothing: a panel scrolled out of view is neither redrawn every second (its age, its
verdicts, its trend) nor refilled when its query answers; it catches up the moment it
scrolls into view.

Why not let Textual skip it: redrawing a widget that is not on screen marks the compositor's
map of every widget stale, and the next such redraw lays out the whole screen (every panel,
on screen or not) to find where it is. With a dozen panels refreshing each second that was
most of the console's layouts, and most of its cyclic garbage (each layout leaves its map in
a reference cycle for the collector)."""

from __future__ import annotations

from collections.abc import Collection

from textual.screen import Screen
from textual.widget import Widget


def visible(screen: Screen) -> Collection[Widget] | None:
    """The widgets the screen's last layout placed in view; None when that cannot be known
    (then everything counts as visible: a panel drawn for nothing is better than one left
    stale on screen). It reads the compositor's own record of what it drew, which Textual
    keeps private: a Textual that renames it costs speed here, never correctness."""
    try:
        widgets = screen._compositor.visible_widgets
    except Exception:  # a private attribute of another version: fall back to "all"
        return None
    return widgets if isinstance(widgets, dict) else None
