"""`cutover validate --explain`: what each query will cost on the operator's database, as
Postgres plans it there (EXPLAIN without ANALYZE: nothing runs), so a panel that would read
the whole table every 30 seconds is seen before the cutover, not during it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cutover.base.errors import CutoverError
from cutover.runbook.durations import humanize
from cutover.runbook.model import Query
from cutover.sources.caps import cap_text

_COST = re.compile(r"\(cost=[0-9.]+\.\.([0-9.]+) rows=([0-9]+)")
_FULL_SCAN = re.compile(r"\bSeq Scan on (\S+)")
# Plans of a few hundred lines exist (a query over partitions): enough to read, bounded.
MAX_PLAN_LINES = 80


class Explains(Protocol):
    async def explain(self, query: Query, *args: object) -> list[str]: ...


@dataclass(frozen=True)
class Plan:
    """One query's plan on this database, or why there is none."""

    query_id: str
    refresh_s: float
    lines: tuple[str, ...] = ()
    error: str | None = None

    @property
    def cost(self) -> float | None:
        """The planner's estimated total cost (its own units: compare plans, not seconds).

        >>> Plan("q", 30, ("Aggregate  (cost=0.00..18778.52 rows=1 width=8)",)).cost
        18778.52
        """
        found = _COST.search(self.lines[0]) if self.lines else None
        return float(found.group(1)) if found else None

    @property
    def rows(self) -> int | None:
        found = _COST.search(self.lines[0]) if self.lines else None
        return int(found.group(2)) if found else None

    @property
    def full_scans(self) -> tuple[str, ...]:
        """Tables the plan reads whole (a sequential scan), each once.

        >>> Plan("q", 30, ("Aggregate  (cost=1..2 rows=1 width=8)",
        ...                "  ->  Parallel Seq Scan on user_profiles  (cost=…)")).full_scans
        ('user_profiles',)
        """
        found = (m.group(1) for line in self.lines for m in _FULL_SCAN.finditer(line))
        return tuple(dict.fromkeys(found))


async def plans(
    runner: Explains,
    queries: Iterable[Query],
    args_for: Callable[[Query], tuple[object, ...]] = lambda query: (),
) -> list[Plan]:
    """Each SQL query's plan, in the order given; a query that cannot be planned (a column
    it needs is missing, the guard refuses it) carries why instead."""
    out = []
    for query in queries:
        if query.kind != "sql":  # an endpoint, or computed from others: no plan
            continue
        try:
            lines = await runner.explain(query, *args_for(query))
        except CutoverError as exc:
            out.append(Plan(query.id, query.refresh_s, error=str(exc)))
        except Exception as exc:  # Postgres's own words (a missing column, say)
            out.append(Plan(query.id, query.refresh_s, error=f"{type(exc).__name__}: {exc}"))
        else:
            out.append(Plan(query.id, query.refresh_s, tuple(lines)))
    return out


def report(found: Sequence[Plan]) -> list[str]:
    """What `validate --explain` prints: one line per query (estimated cost, rows, how often
    it runs, any table read whole), costliest first; then each plan as Postgres wrote it."""
    width = max((len(p.query_id) for p in found), default=5)
    lines = [
        "plans on this database (EXPLAIN: estimated by the planner, nothing ran); cost is in "
        "the planner's units, for comparing queries and indexes, not seconds",
        f"  {'query':<{width}}  {'cost':>12}  {'rows':>8}  {'every':>6}  reads whole",
    ]
    ordered = sorted(found, key=lambda p: -(p.cost if p.cost is not None else -1))
    for plan in ordered:
        if plan.error is not None:
            why = cap_text(plan.error, 200)
            lines.append(f"  {plan.query_id:<{width}}  {'—':>12}  {'':>8}  {'':>6}  {why}")
            continue
        cost = f"{plan.cost:,.0f}" if plan.cost is not None else "?"
        rows = f"{plan.rows:,}" if plan.rows is not None else "?"
        every = humanize(plan.refresh_s)
        scans = ", ".join(plan.full_scans) or "-"
        lines.append(f"  {plan.query_id:<{width}}  {cost:>12}  {rows:>8}  {every:>6}  {scans}")
    for plan in found:
        if plan.error is not None or not plan.lines:
            continue
        lines.append("")
        lines.append(f"{plan.query_id}:")
        shown = plan.lines[:MAX_PLAN_LINES]
        lines.extend(f"  {line}" for line in shown)
        if len(plan.lines) > len(shown):
            lines.append(f"  … {len(plan.lines) - len(shown)} more lines")
    return lines
