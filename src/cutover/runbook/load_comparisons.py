"""Loading one comparison (a gate's or a trigger's): the column or proportion it reads, the row,
two samples (`against`, distributions, new rows) and the baselines they name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cutover.runbook import sqlfile, sqlguard
from cutover.runbook.keys import AGAINST, DISTRIBUTION, NEW_ROWS, OPS, TREND, TRIGGER
from cutover.runbook.model import (
    DEFAULT_CONFIDENCE,
    DEFAULT_DISTRIBUTION_MARGIN,
    PREVIOUS,
    Against,
    Comparison,
    Distribution,
    NewRows,
    Query,
    RowSelector,
    Trend,
    boundary,
)
from cutover.runbook.reader import Reader, unknown_key


def read_comparison(
    r: Reader, item: Any, path: tuple, allowed: dict, what: str, queries: dict[str, Query]
) -> tuple[dict, Comparison | None]:
    table = r.table(item, path, allowed, what=what)
    raw = item if isinstance(item, dict) else {}
    # What it compares decides which keys it needs: a constant (`value`), another row or a
    # baseline (`against`, with `margin`), a histogram, a set of keys, a slope over time.
    kinds = ("distribution", "new_rows", "against", "trend")
    kind = next((k for k in kinds if k in raw), "value")
    required = {"value": ("id", "query", "op", "value"), "trend": ("id", "query")}.get(
        kind, ("id", "query", "op")
    )
    ok = all([r.require(table, item, path, key, what) for key in required])
    r.ident(table, path, what)
    if "query" in table and table["query"] not in queries:
        unknown_key(r, (*path, "query"), "query", table["query"], queries)
        ok = False
    if "op" in table and table["op"] not in OPS:
        r.problem((*path, "op"), f"op {table['op']!r} is not one of {' '.join(OPS)}", at_value=True)
        ok = False
    has_column, row_count = "column" in table, table.get("row_count", False)
    if kind in ("value", "against") and has_column == bool(row_count):
        r.problem(path, f"{what} needs exactly one of `column` or `row_count = true`")
        ok = False
    if kind == "new_rows" and not limits_no_set(r, queries.get(table.get("query", "")), path):
        ok = False
    if ("successes" in table) != ("trials" in table):
        r.problem(path, f"{what}: `successes` and `trials` go together")
        ok = False
    if "confidence" in table:
        if "successes" not in table and "distribution" not in raw and "trend" not in raw:
            r.problem(
                (*path, "confidence"),
                "confidence needs `successes` and `trials` (or a distribution or a trend)",
                at_value=True,
            )
            ok = False
        elif not 0.5 <= table["confidence"] < 1:
            r.problem(
                (*path, "confidence"),
                "confidence must be at least 0.5 and below 1, e.g. 0.95",
                at_value=True,
            )
            ok = False
    trend = read_trend(r, table, raw, path) if kind == "trend" else None
    two = read_two_samples(r, table, raw, path, kind)
    if not ok or two is None or (kind == "trend" and trend is None):
        return table, None
    row, against, distribution, new_rows = two
    margin = table.get("margin", DEFAULT_DISTRIBUTION_MARGIN if distribution else 0.0)
    op = table.get("op")
    if trend is not None:
        value, op = trend.slope, trend.op
    elif kind == "value":
        value = table["value"]
    elif kind == "new_rows":
        value = table.get("value", 0)
    else:
        # The boundary on the difference: a gate and its negated trigger share it.
        value = boundary(table["op"], margin, trigger=allowed is TRIGGER)
    uses_confidence = "successes" in table or distribution is not None or trend is not None
    return table, Comparison(
        query=table["query"],
        op=op,
        value=value,
        column=table.get("column"),
        row_count=bool(row_count),
        successes=table.get("successes"),
        trials=table.get("trials"),
        confidence=table.get("confidence", DEFAULT_CONFIDENCE if uses_confidence else None),
        row=row,
        against=against,
        margin=margin,
        distribution=distribution,
        new_rows=new_rows,
        trend=trend,
    )


def read_trend(r: Reader, table: dict, raw: dict, path: tuple) -> Trend | None:
    """`trend = { over = "12h", op = "<=", slope = 0 }`: the column's slope over the
    evidence of the last `over`, in its units per hour."""
    ok = True
    for key in ("row_count", "successes", "trials", "value", "margin", "op", "against"):
        if key in raw:
            r.problem(
                (*path, key),
                f"{key} does not go with trend: it compares the slope of `column` over time "
                "(trend's own op and slope)",
                at_value=True,
            )
            ok = False
    if "column" not in table:
        if "column" not in raw:
            r.problem(path, "a trend needs `column`: the value whose slope it judges")
        ok = False
    if "trend" not in table:
        return None  # the wrong type, already said
    where = (*path, "trend")
    parts = r.table(table["trend"], where, TREND, what="trend")
    if isinstance(raw["trend"], dict) and any(key not in parts for key in raw["trend"]):
        ok = False  # an unknown key or a wrong type, already said
    present = [r.require(parts, raw["trend"], where, k, "trend") for k in ("over", "op", "slope")]
    if not all(present):
        return None
    if parts["op"] not in ("<", "<=", ">", ">="):
        r.problem(
            (*where, "op"),
            f"trend op {parts['op']!r} is not one of < <= > >=: a slope is above or below",
            at_value=True,
        )
        ok = False
    if parts["over"] < 600:
        r.problem((*where, "over"), "trend over must be at least 10m", at_value=True)
        ok = False
    if not ok:
        return None
    return Trend(over_s=parts["over"], op=parts["op"], slope=float(parts["slope"]))


def limits_no_set(r: Reader, query: Query | None, path: tuple) -> bool:
    """A set comparison reads every row: a query with its own LIMIT shows only some keys,
    so a key beyond it looks new (or an old one gone). Refused, naming where the LIMIT is."""
    if query is None or query.kind != "sql":
        return True
    at = sqlguard.limited(query.sql)
    if at is None:
        return True
    statement = sqlfile.Statement(
        query.statement or 1, query.sql, None, "", query.sql_line, query.sql_col
    )
    line, col = statement.position_of(at)
    try:
        shown = query.file.relative_to(r.file.resolve().parent)
    except ValueError:
        shown = Path(query.file.name)
    r.problem(
        (*path, "query"),
        f"new_rows compares every row of a query, but {query.id} has a LIMIT ({shown}:{line}:"
        f"{col}): keys beyond it would look new. Use a query made for the set, without LIMIT",
        at_value=True,
    )
    return False


def read_two_samples(
    r: Reader, table: dict, raw: dict, path: tuple, kind: str
) -> tuple[RowSelector | None, Against | None, Distribution | None, NewRows | None] | None:
    """The keys that choose what a comparison reads and what it compares with: `row`,
    `against`, `margin`, `distribution`, `new_rows`; None after a problem."""
    ok = True

    def refuse(key: str, message: str) -> None:
        nonlocal ok
        r.problem((*path, key), message, at_value=key in raw)
        ok = False

    if "distribution" in raw and "new_rows" in raw:
        refuse("new_rows", "a comparison takes distribution or new_rows, not both")
    if "trend" in raw and kind != "trend":
        refuse("trend", f"trend does not go with {kind}: it judges one column's slope")
    if kind in ("distribution", "new_rows"):
        for key in ("column", "row_count", "successes", "trials", "row"):
            if key in raw:
                refuse(key, f"{key} does not go with {kind}: it reads every row of the query")
    if kind == "distribution" and "value" in raw:
        refuse("value", "value does not go with distribution: margin bounds Cliff's δ")
    if kind == "new_rows" and "margin" in raw:
        refuse("margin", "margin does not go with new_rows: value bounds the count of new keys")
    if kind == "against" and "value" in raw:
        refuse(
            "value",
            "value does not go with against: the two sides are compared with each other, "
            "and margin says how far apart they may be",
        )
    if kind == "value" and "margin" in raw:
        refuse("margin", "margin goes with against (how far apart the two sides may be)")

    row = read_row_selector(r, table["row"], (*path, "row")) if "row" in table else None
    if "row" in table and row is None:
        ok = False
    if row is not None and table.get("row_count"):
        refuse("row", "row picks one row; row_count counts them all")

    against: Against | None = None
    if "against" in table:
        against = read_against(r, table["against"], (*path, "against"))
        ok = ok and against is not None
    elif kind in ("distribution", "new_rows"):
        r.problem(
            path,
            f'{kind} compares with a baseline: add against = {{ baseline = "previous" }} '
            "(or a stage id)",
        )
        ok = False
    if against is not None and against.row is not None:
        if kind in ("distribution", "new_rows"):
            refuse("against", f"{kind} compares with a baseline, not another row")
        elif table.get("row_count"):
            refuse("against", "row_count against another row of the same query is the same count")
        elif against.row == (row or 1):
            refuse("against", "against.row picks the same row as row: nothing to compare")

    if "margin" in table:
        margin = table["margin"]
        if margin < 0:
            refuse("margin", "margin must be 0 or more")
        elif kind == "distribution" and margin >= 1:
            refuse(
                "margin",
                "margin bounds Cliff's δ, which lies between −1 and 1: it must be below 1 "
                f"({DEFAULT_DISTRIBUTION_MARGIN} is negligible)",
            )
        elif "successes" in table and margin >= 100:
            refuse("margin", "margin is in percentage points here: it must be below 100")

    distribution = new_rows = None
    if "distribution" in table:
        where = (*path, "distribution")
        parts = r.table(table["distribution"], where, DISTRIBUTION, what="distribution")
        needed = [
            r.require(parts, table["distribution"], where, k, "distribution")
            for k in ("bucket", "count")
        ]
        if all(needed):
            distribution = Distribution(parts["bucket"], parts["count"])
        else:
            ok = False
    if "new_rows" in table:
        where = (*path, "new_rows")
        parts = r.table(table["new_rows"], where, NEW_ROWS, what="new_rows")
        if r.require(parts, table["new_rows"], where, "key", "new_rows"):
            new_rows = NewRows(parts["key"])
        else:
            ok = False
    if any(
        key in raw and key not in table for key in ("row", "against", "distribution", "new_rows")
    ):
        ok = False  # the wrong type, already said
    return (row, against, distribution, new_rows) if ok else None


def read_against(r: Reader, raw: Any, path: tuple) -> Against | None:
    table = r.table(raw, path, AGAINST, what="against")
    if isinstance(raw, dict) and any(key not in table for key in raw):
        return None  # an unknown key or a wrong type, already said
    if ("row" in table) == ("baseline" in table):
        r.problem(
            path,
            "against takes one of `row` (another row of this query) or `baseline` (a stage "
            'id or "previous")',
            at_value=True,
        )
        return None
    if "baseline" in table:
        # Which stages exist is checked once every stage is read (check_baselines).
        return Against(baseline=table["baseline"])
    row = read_row_selector(r, table["row"], (*path, "row"))
    return None if row is None else Against(row=row)


def read_row_selector(r: Reader, raw: dict | int, path: tuple) -> RowSelector | None:
    """`row = { pipeline_version = "v2" }` or `row = 3`, checked."""
    if isinstance(raw, int):
        if raw < 1:
            r.problem(path, f"row numbers start at 1 (the first row), not {raw}", at_value=True)
            return None
        return raw
    if not raw:
        r.problem(
            path, 'row needs a column = value, like { pipeline_version = "v2" }', at_value=True
        )
        return None
    pairs = []
    for name, value in raw.items():
        good = isinstance(value, str | int | float) and not (
            isinstance(value, float) and not math.isfinite(value)
        )
        if not good:
            r.problem(
                (*path, name),
                f"row: {name} must be a string, a finite number or true/false, to equal a cell",
                at_value=True,
            )
            return None
        pairs.append((name, value))
    return tuple(pairs)


def check_baselines(r: Reader, raw_stages: Any, raw_triggers: Any) -> None:
    """A baseline names a stage. A gate's must come before its own stage: its exit snapshot
    cannot exist the first time through, and the gate would wait forever."""
    if not isinstance(raw_stages, list):
        return
    ids = [s.get("id") for s in raw_stages if isinstance(s, dict)]
    known = {i: None for i in ids if isinstance(i, str)}

    def named(item: Any) -> str | None:
        against = item.get("against") if isinstance(item, dict) else None
        name = against.get("baseline") if isinstance(against, dict) else None
        return name if isinstance(name, str) else None

    for i, stage in enumerate(raw_stages):
        gates = stage.get("gates") if isinstance(stage, dict) else None
        for j, gate in enumerate(gates if isinstance(gates, list) else []):
            name = named(gate)
            where = ("stages", i, "gates", j, "against", "baseline")
            if name is None:
                continue
            if name == PREVIOUS:
                if i == 0:
                    r.problem(where, "the first stage has no previous stage", at_value=True)
            elif name not in known:
                unknown_key(r, where, "stage", name, known)
            elif ids.index(name) >= i:
                r.problem(
                    where,
                    f"a gate can compare only with an earlier stage's exit; {name}'s exit cannot "
                    f"exist the first time through {ids[i]}",
                    at_value=True,
                )
    for k, trigger in enumerate(raw_triggers if isinstance(raw_triggers, list) else []):
        name = named(trigger)
        if name is not None and name != PREVIOUS and name not in known:
            unknown_key(r, ("triggers", k, "against", "baseline"), "stage", name, known)
