"""Numbers from outside as JSON can hold them: a query may answer ±Infinity or NaN (Postgres's
numeric and float do, JSON endpoints send -Infinity), and no such value may stop a process
that records it. JSON has no word for them, so they are written as text and read back."""

from __future__ import annotations

import math
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
