"""Derived queries (`kind = "derived"`): a result computed from the latest results of other
queries, never run. Every place that gathers results (a `check`, the console, the watcher)
calls `refresh` after taking in an answer, so a derived result is always the latest answers'
and all three agree on it. Pure: results in, results out."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from cutover.runbook.expressions import Unreadable, evaluate
from cutover.runbook.model import Query
from cutover.sources.results import Cause, QueryResult

# A result's number as a cell: a whole number as an int (a count stays a count on screen and
# in the observed share's "of N imports"), anything else a float.
_EXACT = 2.0**53


def derive(query: Query, results: Mapping[str, QueryResult]) -> QueryResult:
    """`query`'s one row from the results of the queries it reads. Not run (no time) until
    each has answered; failed, with the first failure's words and cause, when one failed
    (a column the database lacks stays LACKING, so an optional gate on it still does not
    count); as old as the oldest answer, so it goes stale when they do.

    >>> from datetime import UTC
    >>> from pathlib import Path
    >>> from cutover.runbook.expressions import parse
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> rows = QueryResult("rows", ("v2", "v1"), ((18, 0),), ran_at=at)
    >>> calls = QueryResult("calls", ("calls",), ((162,),), ran_at=at)
    >>> share = Query("share", "share", Path("runbook.toml"), None, 30.0, kind="derived",
    ...               derived_from=("rows", "calls"),
    ...               expressions={"v2_pct": parse("100 * rows.v2 / (rows.v2 + calls.calls)",
    ...                                            {"rows", "calls"})})
    >>> derive(share, {"rows": rows, "calls": calls}).rows
    ((10,),)
    """
    inputs = [results.get(name) for name in query.derived_from]
    if any(r is None or (r.error is None and r.ran_at is None) for r in inputs):
        return QueryResult(query.id)
    times = [r.ran_at for r in inputs if r is not None and r.ran_at is not None]
    ran_at: datetime | None = min(times) if times else None
    for name, result in zip(query.derived_from, inputs, strict=True):
        assert result is not None
        if result.error is not None:
            return QueryResult(
                query.id, ran_at=ran_at, error=f"{name}: {result.error}", cause=result.cause
            )
    by_name = dict(zip(query.derived_from, inputs, strict=True))

    def read(name: str, column: str) -> Any:
        result = by_name[name]
        assert result is not None
        if column not in result.columns:
            shown = ", ".join(result.columns[:20]) or "none"
            raise Unreadable(f"{name} has no column {column} (columns: {shown})")
        row = result.first_row()
        return None if row is None else row[column]  # no row: nothing measured (NULL)

    values: list[Any] = []
    try:
        for expression in query.expressions.values():
            values.append(_cell(evaluate(expression, read)))
    except Unreadable as exc:
        return QueryResult(query.id, ran_at=ran_at, error=str(exc), cause=Cause.FAILED)
    return QueryResult(
        query.id,
        columns=tuple(query.expressions),
        rows=(tuple(values),),
        ran_at=ran_at,
        duration_s=0.0,
    )


def _cell(value: float | None) -> int | float | None:
    if value is not None and value == int(value) and abs(value) < _EXACT:
        return int(value)
    return value


def refresh(
    queries: Mapping[str, Query],
    results: MutableMapping[str, QueryResult],
    changed: str | None = None,
) -> list[QueryResult]:
    """Recompute, into `results`, every derived query that reads `changed` (every one when
    None), and return what was recomputed."""
    out = []
    for query in queries.values():
        if query.kind == "derived" and (changed is None or changed in query.derived_from):
            result = derive(query, results)
            results[query.id] = result
            out.append(result)
    return out


def inputs(queries: Mapping[str, Query], wanted: list[str]) -> list[str]:
    """`wanted` with the queries its derived ones read, in runbook order, each once: what
    must run for them all to have a result."""
    needed = set(wanted)
    for name in wanted:
        needed.update(queries[name].derived_from)
    return [q for q in queries if q in needed]
