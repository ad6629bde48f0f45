"""Numbers from outside as JSON can hold them: a query may answer ±Infinity or NaN (Postgres's
numeric and float do, JSON endpoints send -Infinity), and no such value may stop a process
that records it. JSON has no word for them, so they are written as text and read back."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

# What `float()` reads back, and what Postgres and JavaScript print.
_WORDS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_number(value: float | None) -> float | str | None:
    """A float JSON can hold, or its name as text.

    >>> json_number(1.5), json_number(float("inf")), json_number(float("-inf")), json_number(None)
    (1.5, 'Infinity', '-Infinity', None)
    >>> json_number(float("nan"))
    'NaN'
    """
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _WORDS[value]


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float inside it (dicts, lists, tuples) named as text.

    >>> json_safe({"v": float("inf"), "i": [1.0, float("-inf")], "s": "x"})
    {'v': 'Infinity', 'i': [1.0, '-Infinity'], 's': 'x'}
    """
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def read_number(value: Any) -> float | None:
    """A number as json_number wrote it (float() reads "Infinity", "-Infinity" and "NaN").

    >>> read_number("-Infinity"), read_number(2), read_number(None)
    (-inf, 2.0, None)
    """
    return None if value is None else float(value)


def not_a_number(cell: Any, width: int = 60) -> str:
    """Why a cell a comparison reads is not a number, in SQL's words and with the usual cure:
    an age written `now() - started_at` is an interval, a count cast to text for display is
    text. Never a Python repr like `datetime.timedelta(seconds=300)`.

    >>> not_a_number(timedelta(minutes=5))
    'an interval (0:05:00), not a number: extract(epoch from …) gives its seconds'
    >>> not_a_number(datetime(2026, 12, 1, 9, 30))
    'a timestamp (2026-12-01 09:30:00), not a number: extract(epoch from …) gives its seconds'
    >>> not_a_number("12")
    "text ('12'), not a number: cast it in the query (…::numeric)"
    >>> not_a_number("twelve"), not_a_number(b"\\xde\\xad")
    ("text ('twelve'), not a number", 'bytes (2), not a number')
    >>> not_a_number([1, 2]), not_a_number({"a": 1})
    ('an array ([1, 2]), not a number', "JSON ({'a': 1}), not a number")
    """
    if isinstance(cell, timedelta):
        return f"an interval ({cell}), not a number: extract(epoch from …) gives its seconds"
    if isinstance(cell, datetime | date | time):
        kind = "a timestamp" if isinstance(cell, datetime) else f"a {type(cell).__name__}"
        return f"{kind} ({cell}), not a number: extract(epoch from …) gives its seconds"
    if isinstance(cell, bytes | bytearray | memoryview):
        return f"bytes ({len(cell)}), not a number"
    if isinstance(cell, str):
        shown = _clipped(repr(cell), width)
        try:
            float(cell.strip())
        except ValueError:
            return f"text ({shown}), not a number"
        return f"text ({shown}), not a number: cast it in the query (…::numeric)"
    kind = {list: "an array", tuple: "a record", dict: "JSON"}.get(type(cell))
    return f"{kind or 'a ' + type(cell).__name__} ({_clipped(repr(cell), width)}), not a number"


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
