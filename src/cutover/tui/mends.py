"""Mends for two places in Textual that turn what the console draws every second into cyclic
garbage (freed only by the collector's passes, which stall the screen while they walk it)."""

from __future__ import annotations

from rich.segment import Segment
from textual.cache import LRUCache
from textual.strip import Strip

_divide = Strip.divide
_clear = LRUCache.clear


def _divide_without_cycle(self: Strip, cuts: list[int]) -> list[Strip]:
    # Strip.divide remembers its answer on the strip; when the only cut is the line's end
    # the answer is [the strip itself], and the strip then refers to itself through its
    # cache. The compositor divides every line of every frame so; the answer needs no cache.
    if [cut for cut in cuts if cut <= self.cell_length] == [self.cell_length]:
        return [self]
    return _divide(self, cuts)


def _clear_without_cycle(self: LRUCache) -> None:
    # The cache keeps its entries in a ring of [previous, next, key, value] lists; clear()
    # let go of the ring whole, and a ring refers to itself. A table refilled every second
    # (a panel whose rows changed) cleared its row, cell and line caches so, each holding
    # its rows and rendered lines. Undone link by link, each is freed at once.
    for link in self._cache.values():
        link.clear()
    _clear(self)


def _divide_keeps_itself() -> bool:
    line = Strip([Segment("ab")], 2)
    answer = _divide(line, [2])
    cache = getattr(line, "_divide_cache", None)
    kept = cache.get((2,)) if cache is not None else None
    return kept is answer and any(strip is line for strip in answer)


def _clear_leaves_a_ring() -> bool:
    cache: LRUCache = LRUCache(4)
    cache.set("a", 1)
    links = getattr(cache, "_cache", None)
    return isinstance(links, dict) and all(isinstance(v, list) for v in links.values())


def _needed(probe) -> bool:
    # A Textual whose insides changed shape is left as it is: garbage costs time, a console
    # that cannot start costs the rollback key.
    try:
        return probe()
    except Exception:
        return False


def mend() -> None:
    """Install the mends, once, and each only where this Textual still needs it."""
    if Strip.divide is not _divide_without_cycle and _needed(_divide_keeps_itself):
        Strip.divide = _divide_without_cycle  # type: ignore[method-assign]
    if LRUCache.clear is not _clear_without_cycle and _needed(_clear_leaves_a_ring):
        LRUCache.clear = _clear_without_cycle  # type: ignore[method-assign]
