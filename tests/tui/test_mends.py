"""What the console draws every second is freed without the collector: Textual's strips and
its LRU caches no longer leave cycles behind (tui/mends.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from rich.segment import Segment
from textual.cache import LRUCache
from textual.strip import Strip

from cutover.tui import mends

from .conftest import fixed_app


class Marker:
    """A value only these tests make: found in the collector's garbage, it is ours."""


def _garbage_after(make) -> list:
    """What the collector finds once `make` has run (the test's thread may share the
    process with others: each test looks for its own objects in it)."""
    mends.mend()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        make()
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_line_divided_at_its_end_is_freed_without_the_collector():
    def draw() -> None:
        line = Strip([Segment("abc"), Segment("de")], 5)
        assert line.divide([5]) == [line]
        assert [s.text for s in line.divide([2, 5])] == ["ab", "cde"]  # other cuts as before

    assert not [o for o in _garbage_after(draw) if isinstance(o, Strip)]


def test_a_cleared_cache_is_freed_without_the_collector():
    def fill_and_clear() -> None:
        cache: LRUCache = LRUCache(3)
        for n in range(5):  # evicts two on the way
            cache.set(n, Marker())
        assert isinstance(cache.get(4), Marker) and cache.get(0) is None
        cache.clear()
        assert len(cache) == 0 and cache.get(4) is None
        cache.set("again", Marker())  # still works after
        assert isinstance(cache.get("again"), Marker)
        cache.clear()

    assert not [o for o in _garbage_after(fill_and_clear) if isinstance(o, Marker)]


async def test_the_console_installs_the_mends(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(Strip, "divide", mends._divide)  # as Textual ships them
    monkeypatch.setattr(LRUCache, "clear", mends._clear)
    app = fixed_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert Strip.divide is mends._divide_without_cycle
        assert LRUCache.clear is mends._clear_without_cycle


def test_a_textual_whose_insides_changed_is_left_alone(monkeypatch):
    # What the mends look for is Textual's private shape: a probe that breaks on another
    # version must not stop the console from starting.
    monkeypatch.setattr(Strip, "divide", mends._divide)
    monkeypatch.setattr(LRUCache, "clear", mends._clear)

    def broken() -> bool:
        raise TypeError("Strip() takes no arguments")

    monkeypatch.setattr(mends, "_divide_keeps_itself", broken)
    monkeypatch.setattr(mends, "_clear_leaves_a_ring", broken)
    mends.mend()
    assert Strip.divide is mends._divide and LRUCache.clear is mends._clear
