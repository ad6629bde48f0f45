"""How much of a query's result cutover ever holds: rows per query, characters per cell.
Cut where the rows are fetched, so a huge result never reaches a panel, `check` or `--json`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from cutover.base.inert import inert

# The one place these limits live. A panel shows at most MAX_ROWS rows (the fetch stops at
# MAX_ROWS + 1, which is how it knows there were more); a cell at most MAX_CELL_CHARS.
MAX_ROWS = 1_000
MAX_CELL_CHARS = 2_000
# An array cell keeps at most this many elements before it becomes text.
MAX_CELL_ITEMS = 200
# What `check` prints for one reason or value, text or --json.
MAX_REASON_CHARS = 2_000


def cap_cell(value: Any, limit: int = MAX_CELL_CHARS) -> Any:
    """A cell as cutover keeps it: text and bytes past `limit` become their head and how
    long they were; long arrays likewise; everything else (numbers, times, NULL) untouched,
    so gates read exactly what the database said.

    >>> cap_cell("abcdefgh", limit=3)
    'abc… (8 chars)'
    >>> cap_cell("abc", limit=3), cap_cell(98.5), cap_cell(None)
    ('abc', 98.5, None)
    >>> cap_cell(b"\\x00\\x01\\x02\\x03", limit=2)
    "b'\\\\x00\\\\x01'… (4 bytes)"
    >>> cap_cell(list(range(5)), limit=6)
    '[0, 1,… (5 items)'
    >>> cap_cell([1, 2], limit=6)
    [1, 2]
    """
    if isinstance(value, str):
        return cap_text(value, limit)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) <= limit:
            return value
        return f"{raw[:limit]!r}… ({len(raw):,} bytes)"
    if isinstance(value, list | tuple):
        items = [cap_cell(v, limit) for v in value[:MAX_CELL_ITEMS]]
        shown = str(items)
        if len(value) <= MAX_CELL_ITEMS and len(shown) <= limit:
            return items if isinstance(value, list) else tuple(items)
        return f"{shown[:limit]}… ({len(value):,} items)"
    return value


# Cells cap_cell returns as they are, by exact type: what Postgres answers most often.
_KEPT_AS_IS = frozenset(
    {int, float, bool, type(None), Decimal, dt.datetime, dt.date, dt.time, dt.timedelta, UUID}
)


def cap_row(row: Any, limit: int = MAX_CELL_CHARS) -> tuple[Any, ...]:
    """One fetched row (an asyncpg Record or any sequence) as a tuple of capped cells.

    The console caps up to 1,000 rows per query per refresh on its event loop: a row whose
    every cell is a short text or a plain scalar is kept as it is, without a call per cell.

    >>> cap_row((1, "ok", None)), cap_row(("abcdef", 2.5), limit=3)
    ((1, 'ok', None), ('abc… (6 chars)', 2.5))
    """
    cells = tuple(row)
    for value in cells:
        kind = type(value)
        if kind is str:
            if len(value) > limit:
                break
        elif kind not in _KEPT_AS_IS:
            break
    else:
        return cells
    return tuple(cap_cell(v, limit) for v in cells)


def cap_text(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Text for one line of output, cut with the length it had.

    >>> cap_text("x" * 10, limit=4)
    'xxxx… (10 chars)'
    """
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} chars)"


def printable(text: object, limit: int = MAX_REASON_CHARS) -> str:
    """One value or reason as a headless command prints it: bounded, and inert (a control
    character in a query's error or a column's name is shown, never obeyed).

    >>> printable("bad \x1b]0;title\x07 value")
    'bad ^[]0;title^G value'
    >>> printable("x" * 10, limit=4)
    'xxxx… (10 chars)'
    """
    return inert(cap_text(str(text), limit))
