"""Reading a query's result the way a comparison needs it: the row a gate reads, a column's
number, a cell shown to people. Unreadable data is a typed reason (Why), never an exception."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cutover.base.finite import not_a_number
from cutover.base.inert import inert
from cutover.judge.verdicts import Why
from cutover.runbook.model import RowSelector
from cutover.sources.results import QueryResult


class Unreadable(Exception):
    def __init__(self, why: Why, reason: str):
        super().__init__(reason)
        self.why = why
        self.reason = reason


def read_number(
    query: str, result: QueryResult, column: str, row: RowSelector | None = None
) -> float:
    """The selected row's (the first by default) `column` as a float; Unreadable with
    the reason why not."""
    need_column(query, result, column)
    return number_in(select(query, result, row), column)


def need_column(query: str, result: QueryResult, column: str) -> None:
    if column not in result.columns:
        available = ", ".join(result.columns[:20]) or "none"
        raise Unreadable(Why.MISMATCH, f"{query} has no column {column} (columns: {available})")


def select_row(result: QueryResult, row: RowSelector | None) -> dict[str, Any] | None:
    """The row a comparison reads (`row = { pipeline_version = "v2" }`, `row = 3`, the
    first by default) as column → value; None when there is no such row.

    >>> r = QueryResult("v", ("pipeline_version", "rate"), (("v1", 97.0), ("v2", 98.1)))
    >>> select_row(r, (("pipeline_version", "v2"),)), select_row(r, 3)
    ({'pipeline_version': 'v2', 'rate': 98.1}, None)
    """
    try:
        return select(result.query_id, result, row)
    except Unreadable:
        return None


def select(query: str, result: QueryResult, row: RowSelector | None) -> dict[str, Any]:
    if row is None or isinstance(row, int):
        index = 1 if row is None else row
        if len(result.rows) < index:
            if row is None:
                raise Unreadable(Why.NO_DATA, f"no rows yet from {query}")
            count = len(result.rows)
            raise Unreadable(
                Why.NO_DATA,
                f"no row {index} yet: {query} returned {count} row{'' if count == 1 else 's'}",
            )
        return dict(zip(result.columns, result.rows[index - 1], strict=False))
    for name, _ in row:
        need_column(query, result, name)
    at = [result.columns.index(name) for name, _ in row]
    for values in result.rows:
        if all(cell_matches(values[i], wanted) for i, (_, wanted) in zip(at, row, strict=True)):
            return dict(zip(result.columns, values, strict=False))
    capped = f" in the first {len(result.rows):,} (fetch capped)" if result.truncated else ""
    raise Unreadable(Why.NO_DATA, f"no row with {describe_row(row)}{capped}")


def describe_row(row: RowSelector) -> str:
    """`pipeline_version = v2`, `row 3`: a row selection as the reasons name it."""
    if isinstance(row, int):
        return f"row {row}"
    return ", ".join(f"{inert(name, max_len=40)} = {shown_value(v)}" for name, v in row)


def shown_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(float(value))
    return inert(str(value), max_len=60)


def cell_matches(raw: Any, wanted: str | int | float | bool) -> bool:
    """Whether a cell equals a runbook value: numbers by value (Decimal 2.0 is 2), true and
    false only as booleans, text as text; a date or a uuid by its text, as a snapshot
    keeps it (so a baseline's row is found by the same selection).

    >>> cell_matches(Decimal("2.0"), 2), cell_matches(1, True), cell_matches(None, "v2")
    (True, False, False)
    """
    if raw is None:
        return False
    if isinstance(wanted, bool) or isinstance(raw, bool):
        return isinstance(raw, bool) and isinstance(wanted, bool) and raw == wanted
    if isinstance(wanted, int | float):
        return isinstance(raw, int | float | Decimal) and float(raw) == float(wanted)
    if isinstance(raw, int | float | Decimal):
        return False
    return plain_text(raw) == wanted


def plain_text(value: Any) -> str:
    """A cell as text, the way a snapshot keeps what JSON cannot hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def number_in(row: dict[str, Any], column: str) -> float:
    raw: Any = row[column]
    if raw is None:
        raise Unreadable(Why.NO_DATA, f"NULL in {column}")
    # bool is an int in Python and a yes/no column compared with `== 1` is a fair gate.
    if not isinstance(raw, int | float | Decimal):
        raise Unreadable(Why.MISMATCH, f"{column} is {not_a_number(raw)}")
    value = float(raw)
    if math.isnan(value):
        raise Unreadable(Why.MISMATCH, f"{column} is NaN")
    return value


def number_text(x: float, threshold: float | None = None, percent: bool = False) -> str:
    """Integers without ".0", thousands separated, one decimal for percents and numbers
    from 1 up, three significant digits below 1; more only where rounding would make a
    number look equal to a threshold it is not equal to."""
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if math.isnan(x):  # not a number is said as such; it never ends a caller
        return "NaN"
    if x == int(x):
        return f"{int(x):,}"
    fixed = percent or abs(x) >= 1
    for digits in range(1, 8) if fixed else range(3, 10):
        text = f"{x:,.{digits}f}" if fixed else f"{x:.{digits}g}"
        if threshold is None or x == threshold or float(text.replace(",", "")) != threshold:
            return text
    return text


# Decimal, as the platforms bill memory and as runbooks write limits (1.8 GB = 1,800,000,000).
BYTE_UNITS = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def in_bytes(column: str | None) -> bool:
    """The column's name says its unit: `memory_bytes`, `bytes`."""
    return column is not None and (column == "bytes" or column.endswith("_bytes"))


def amount_text(x: float, column: str | None = None, threshold: float | None = None) -> str:
    """A judged number as people read it: bytes in kB, MB, GB when the column's name says
    bytes, otherwise number_text; never rounded to look equal to a threshold it is not.

    >>> amount_text(1_900_000_000, "memory_bytes"), amount_text(512, "bytes")
    ('1.9 GB', '512 B')
    >>> amount_text(1_800_000_001, "memory_bytes", 1_800_000_000)
    '1.800000001 GB'
    >>> amount_text(20_000_000, "memory_bytes"), amount_text(1_900_000_000, "rows")
    ('20 MB', '1,900,000,000')
    >>> amount_text(float("nan"), "memory_bytes"), amount_text(float("-inf"), "memory_bytes")
    ('NaN', '-∞')
    """
    if not in_bytes(column) or not math.isfinite(x):
        return number_text(x, threshold)
    unit, size = next(((u, n) for u, n in BYTE_UNITS if abs(x) >= n), ("B", 1.0))
    if unit == "B":
        return f"{number_text(x, threshold)} B"
    text = ""
    for digits in range(2, 13):  # 1.95 GB, 1.9 GB, 20 MB: two decimals at most, trimmed
        text = f"{x / size:.{digits}f}".rstrip("0").rstrip(".")
        if threshold is None or x == threshold or round(float(text) * size) != threshold:
            break
    return f"{text} {unit}"
