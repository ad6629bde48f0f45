"""The share of traffic the new path actually gets, from the runbook's observed-share query."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cutover.base.errors import CutoverError
from cutover.runbook.model import Query, Runbook
from cutover.sources import derived
from cutover.sources.db import QueryRunner
from cutover.sources.httpquery import run_http
from cutover.sources.results import Cause, QueryResult


def percent_words(share: float) -> str:
    """A share as people read it: whole when whole, one decimal from 1 %, two significant
    digits below (a status once said "observed 1.3468 %").

    >>> percent_words(10.0), percent_words(1.3468), percent_words(0.728155), percent_words(0.0)
    ('10', '1.3', '0.73', '0')
    """
    if share == int(share):
        return f"{int(share)}"
    return f"{share:.1f}" if abs(share) >= 1 else f"{share:.2g}"


@dataclass(frozen=True)
class Observed:
    percent: float | None  # None: no data (no imports in the window) or the query failed
    detail: str  # one line: the share and the query, or why there is none
    count: int | None = None  # how much traffic the share is of: the row's first count
    counted: str = ""  # what that count counts: its column's name ("imports")
    # The query cannot run on this database until someone adds a column it needs (the real
    # soulprint schema has no pipeline_version): no amount of waiting will show a share.
    lasting: bool = False


class Unobservable(CutoverError):
    """The observed share cannot be read on this database at all; the message says why."""


async def observed_share(
    runbook: Runbook,
    runner: QueryRunner,
    since: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Observed | None:
    """The observed share (None when the runbook names no observed-share query).

    `since` is passed as the query's first parameter, if it takes one, so that after a
    rollback only traffic started afterwards counts. A derived share is computed from what
    it reads (an http query among them asks its endpoint with `environ`)."""
    spec = runbook.flag.observed
    if spec is None:
        return None
    query = runbook.queries[spec.query]
    if query.kind != "derived":
        return share_from(await _run(query, runner, since, environ), spec.column)
    results = {
        name: await _run(runbook.queries[name], runner, since, environ)
        for name in query.derived_from
    }
    return share_from(derived.derive(query, results), spec.column)


async def _run(
    query: Query, runner: QueryRunner, since: datetime | None, environ: Mapping[str, str] | None
) -> QueryResult:
    if query.kind == "http":
        return await run_http(query, environ=os.environ if environ is None else environ)
    return await runner.run(query, since) if since else await runner.run(query)


def share_from(result: QueryResult, column: str) -> Observed:
    """The share in a result of the observed-share query, with its evidence or why none."""
    name = result.query_id
    if result.error:
        return Observed(None, f"{name}: {result.error}", lasting=result.cause is Cause.LACKING)
    row = result.first_row()
    if row is None or column not in row:
        return Observed(None, f"{name}: no {column} in its result")
    value = row[column]
    if value is None:
        return Observed(None, f"{name}: no traffic in its window yet")
    if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
        return Observed(None, f"{name}: {column} is not a number")
    share = float(value)
    # The row's other numbers (how many imports, say) are the evidence behind the share.
    evidence = ", ".join(
        f"{key} {number:,}"
        for key, number in row.items()
        if key != column and isinstance(number, int) and not isinstance(number, bool)
    )
    counts = [
        (key, number)
        for key, number in row.items()
        if key != column and isinstance(number, int) and not isinstance(number, bool)
    ]
    count, counted = (counts[0][1], counts[0][0]) if counts else (None, "")
    return Observed(
        share,
        f"{percent_words(share)} % ({name}.{column}" + (f"; {evidence})" if evidence else ")"),
        count,
        counted,
    )


async def wait_until_effective(
    runbook: Runbook,
    runner: QueryRunner,
    since: datetime,
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    progress=lambda line: None,
    environ: Mapping[str, str] | None = None,
) -> tuple[bool, str, float]:
    """Poll until traffic started after `since` shows a share of 0 (rollback effective).

    Returns (effective, the last observation, seconds waited). No traffic yet is not
    evidence of anything, so it keeps waiting. Unobservable when the query cannot run on
    this database at all (a column it needs is missing)."""
    started = time.monotonic()
    last = "no observation yet"
    while True:
        seen = await observed_share(runbook, runner, since, environ)
        if seen is None:
            return False, "the runbook names no observed-share query", 0.0
        if seen.lasting:
            raise Unobservable(seen.detail)
        last = seen.detail
        waited = time.monotonic() - started
        if seen.percent == 0:
            return True, last, waited
        if waited >= timeout_s:
            return False, last, waited
        progress(f"observed since the change: {last}")
        await asyncio.sleep(poll_s)
