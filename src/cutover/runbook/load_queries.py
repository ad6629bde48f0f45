"""Loading [queries.*]: SQL statements out of their files (split, titled, guarded as one plain
read), http queries with their JSONPaths, what a query needs and the parameters it takes."""

from __future__ import annotations

from pathlib import Path

from cutover.runbook import sqlfile, sqlguard, textfile
from cutover.runbook.expressions import Expression, ExpressionError, parse
from cutover.runbook.jsonpaths import jsonpath_problem
from cutover.runbook.keys import (
    COLUMN,
    DERIVED_QUERY,
    HTTP_COLUMN,
    HTTP_METHODS,
    HTTP_QUERY,
    ID,
    QUERY,
    QUERY_KINDS,
    QUERY_PARAMS,
    REDUCERS,
)
from cutover.runbook.load_platform import check_template, read_headers
from cutover.runbook.model import Query
from cutover.runbook.problems import Problem
from cutover.runbook.reader import Reader, unknown_key


def read_queries(r: Reader, raw: dict, folder: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    derived: list[tuple[str, dict]] = []
    for query_id, item in raw.items():
        path = ("queries", query_id)
        kind = item.get("kind", "sql") if isinstance(item, dict) else "sql"
        if kind not in QUERY_KINDS:
            r.problem(
                (*path, "kind"),
                f"query kind {kind!r} is not known; use one of {', '.join(QUERY_KINDS)}",
                at_value=True,
            )
            continue
        if not ID.match(query_id):
            r.problem(path, f"query id {query_id!r} must be lower-case letters, digits, _ or -")
        if kind == "http":
            query = read_http_query(r, query_id, item, path)
            if query is not None:
                queries[query_id] = query
            continue
        if kind == "derived":
            derived.append((query_id, item))  # once every query it may read is known
            continue
        table = r.table(item, path, QUERY, what=f"[queries.{query_id}]")
        if not r.require(table, item, path, "file", f"[queries.{query_id}]"):
            continue
        file = folder / table["file"]
        statement = read_statement(r, (*path, "file"), file, table.get("statement"))
        if statement is None:
            continue
        refresh = table.get("refresh", 30.0)
        if refresh < 1:
            r.problem((*path, "refresh"), "refresh must be at least 1s", at_value=True)
        queries[query_id] = Query(
            id=query_id,
            title=table.get("title") or statement.title or query_id,
            file=file,
            statement=table.get("statement"),
            refresh_s=refresh,
            sql=statement.text,
            help=statement.help,
            sql_line=statement.line,
            sql_col=statement.col,
            needs=read_needs(r, table.get("needs", {}), (*path, "needs")),
            params=read_params(r, table.get("params", []), (*path, "params")),
        )
    for query_id, item in derived:
        query = read_derived_query(r, query_id, item, ("queries", query_id), queries, raw)
        if query is not None:
            queries[query_id] = query
    # In the runbook's order, as every other layer lists them.
    return {q: queries[q] for q in raw if q in queries}


def read_derived_query(
    r: Reader, query_id: str, item: dict, path: tuple, queries: dict[str, Query], raw: dict
) -> Query | None:
    """`kind = "derived"`: columns computed from the latest results of other queries, each an
    expression over `query.column` names (expressions.py), checked here: a name it reads
    must be a query in `from`."""
    what = f'[queries.{query_id}] of kind "derived"'
    table = r.table(item, path, DERIVED_QUERY, what=what)
    has = [r.require(table, item, path, key, what) for key in ("from", "columns")]
    if not all(has):
        return None
    ok = True
    sources: list[str] = []
    where = (*path, "from")
    if not isinstance(table["from"], list) or not all(isinstance(x, str) for x in table["from"]):
        r.problem(where, 'from must be a list of query ids, like ["v2_rows"]', at_value=True)
        return None
    for name in table["from"]:
        if name == query_id:
            r.problem(where, f"{query_id} cannot read itself", at_value=True)
            ok = False
        elif name not in queries:
            if isinstance(raw.get(name), dict) and raw[name].get("kind") == "derived":
                r.problem(
                    where,
                    f"{name} is derived too: a derived query reads SQL and http queries only, "
                    "so what it reads is always a result that ran",
                    at_value=True,
                )
            else:
                unknown_key(r, where, "query", name, queries)
            ok = False
        else:
            sources.append(name)
    if not sources and ok:
        r.problem(where, "from names at least one query", at_value=True)
        ok = False
    expressions: dict[str, Expression] = {}
    for column, text in table["columns"].items():
        at = (*path, "columns", column)
        if not COLUMN.match(column):
            r.problem(at, f"column name {column!r} must be letters, digits and _")
            ok = False
            continue
        if not isinstance(text, str):
            r.problem(
                at, f'columns.{column} is an expression, like "100 * a.n / b.n"', at_value=True
            )
            ok = False
            continue
        try:
            expressions[column] = parse(text, set(table["from"]))
        except ExpressionError as exc:
            r.problem_in_value(at, f"columns.{column}: {exc}", exc.offset)
            ok = False
    if not expressions and ok:
        r.problem((*path, "columns"), "columns names at least one column", at_value=True)
        ok = False
    if not ok:
        return None
    read = {q for e in expressions.values() for q, _ in e.names}
    unread = [q for q in sources if q not in read]
    if unread:
        r.problem(where, f"{', '.join(unread)} is in from but no column reads it", at_value=True)
        return None
    return Query(
        id=query_id,
        title=table.get("title") or query_id,
        file=r.file.resolve(),
        statement=None,
        # As fresh as the stalest query it reads: it is stale when they are.
        refresh_s=max(queries[q].refresh_s for q in sources),
        help=table.get("help", ""),
        kind="derived",
        derived_from=tuple(sources),
        expressions=expressions,
    )


def read_needs(r: Reader, raw: list | dict, path: tuple) -> dict[str, str]:
    """`needs = ["pipeline_version"]`, or with what adding each gives:
    `needs = { pipeline_version = "add it to see the v1/v2 split" }`."""
    pairs = [(c, "") for c in raw] if isinstance(raw, list) else list(raw.items())
    good: dict[str, str] = {}
    for column, hint in pairs:
        if not isinstance(column, str) or not COLUMN.match(column):
            r.problem(
                path,
                f"needs names columns, like pipeline_version; {column!r} is not one",
                at_value=True,
            )
        elif not isinstance(hint, str):
            r.problem(
                (*path, column),
                f"needs.{column} is what adding the column gives: a string",
                at_value=True,
            )
        else:
            good[column] = hint
    return good


def read_params(r: Reader, raw: list, path: tuple) -> tuple[str, ...]:
    """What the session binds to the statement's $1, $2…, in order."""
    good = []
    for value in raw:
        if value in QUERY_PARAMS:
            good.append(value)
        else:
            r.problem(
                path,
                f"params {value!r} is not known; a query may take {', '.join(QUERY_PARAMS)}",
                at_value=True,
            )
    return tuple(good)


def read_http_query(r: Reader, query_id: str, item: dict, path: tuple) -> Query | None:
    """A JSON HTTP endpoint as a query: `rows` (JSONPath) picks the rows, `columns` maps a
    column to a JSONPath within a row; without `rows` the document is one row."""
    what = f'[queries.{query_id}] of kind "http"'
    table = r.table(item, path, HTTP_QUERY, what=what)
    if not r.require(table, item, path, "url", what):
        return None
    ok = True
    check_template(r, table["url"], (*path, "url"))
    method = table.get("method", "POST" if "json" in table else "GET").upper()
    if method not in HTTP_METHODS:
        r.problem(
            (*path, "method"),
            f"method {method!r} is not one of {', '.join(HTTP_METHODS)}",
            at_value=True,
        )
        ok = False
    rows = table.get("rows")
    if rows is not None:
        ok = check_jsonpath(r, rows, (*path, "rows"), "rows") and ok
    columns: dict[str, str] = {}
    reduce: dict[str, str] = {}
    for column, where in table.get("columns", {}).items():
        at = (*path, "columns", column)
        if not COLUMN.match(column):
            r.problem(at, f"column name {column!r} must be letters, digits and _")
            ok = False
            continue
        reducer = None
        if isinstance(where, dict):
            where, reducer = read_reducer(r, where, at, column)
            if where is None:
                ok = False
                continue
        if not isinstance(where, str):
            r.problem(
                at,
                f'columns.{column} must be a JSONPath string, like "$.value", or a table like '
                '{ path = "$[*].value", reduce = "max" }',
                at_value=True,
            )
            ok = False
        elif check_jsonpath(r, where, at, f"columns.{column}"):
            columns[column] = where
            if reducer is not None:
                reduce[column] = reducer
        else:
            ok = False
    refresh = table.get("refresh", 30.0)
    if refresh < 1:
        r.problem((*path, "refresh"), "refresh must be at least 1s", at_value=True)
    timeout = table.get("timeout", 10.0)
    if not 0 < timeout <= 300:
        r.problem((*path, "timeout"), "timeout must be above 0s and at most 5m", at_value=True)
        ok = False
    headers = read_headers(r, table.get("headers", {}), (*path, "headers"))
    if not ok:
        return None
    return Query(
        id=query_id,
        title=table.get("title") or query_id,
        file=r.file.resolve(),
        statement=None,
        refresh_s=refresh,
        help=table.get("help", ""),
        kind="http",
        url=table["url"],
        method=method,
        headers=headers,
        json=table.get("json"),
        timeout_s=timeout,
        rows=rows,
        columns=columns,
        reduce=reduce,
    )


def read_reducer(r: Reader, raw: dict, at: tuple, column: str) -> tuple[str | None, str | None]:
    """`{ path = "$[*].values[-1].value", reduce = "max" }`: a JSONPath that may match many
    values, and how they become one; (None, None) after a problem."""
    parts = r.table(raw, at, HTTP_COLUMN, what=f"columns.{column}")
    if any(key not in parts for key in raw):
        return None, None  # an unknown key or a wrong type, already said
    if not r.require(parts, raw, at, "path", f"columns.{column}"):
        return None, None
    reducer = parts.get("reduce")
    if reducer is None:
        r.problem(
            at,
            f"columns.{column} as a table needs `reduce` ({' | '.join(REDUCERS)}); "
            "a plain JSONPath string reads the first match",
            at_value=True,
        )
        return None, None
    if reducer not in REDUCERS:
        r.problem(
            (*at, "reduce"),
            f"reduce {reducer!r} is not one of {', '.join(REDUCERS)}",
            at_value=True,
        )
        return None, None
    return parts["path"], reducer


def check_jsonpath(r: Reader, path_text: str, where: tuple, key: str) -> bool:
    problem = jsonpath_problem(path_text)
    if problem:
        r.problem(where, f"{key}: {problem}", at_value=True)
        return False
    return True


def read_statement(
    r: Reader, path: tuple, file: Path, index: int | None
) -> sqlfile.Statement | None:
    def shown() -> str:  # named only for a problem: resolving paths is ~0.3 ms a query
        return shown_sql_path(Path(r.shown_as), r.file, file)

    try:
        statements = sqlfile.read_sql_file(file)
    except FileNotFoundError:
        r.problem(
            path, f"query file {file.name!r} not found (looked in {file.parent})", at_value=True
        )
        return None
    except textfile.NotUtf8 as exc:
        r.problems.append(
            Problem(shown(), exc.line, exc.col, f"cannot read this query file: {exc}")
        )
        return None
    except OSError as exc:
        r.problem(path, f"cannot read query file {file.name!r}: {exc}", at_value=True)
        return None
    if not statements:
        r.problems.append(Problem(shown(), 1, 1, "no SQL statement in this file (only comments?)"))
        return None
    if index is None:
        if len(statements) > 1:
            r.problem(
                path,
                f"{file.name} holds {len(statements)} statements; say which with `statement = N`",
                at_value=True,
            )
            return None
        chosen = statements[0]
    elif not 1 <= index <= len(statements):
        r.problem(
            (*path[:-1], "statement"),
            f"statement {index} does not exist: {file.name} holds {len(statements)}",
            at_value=True,
        )
        return None
    else:
        chosen = statements[index - 1]
    refused = sqlguard.refusal(chosen.text)
    if refused:
        line, col = chosen.position_of(refused.offset)
        why = f"a query must be one read-only statement: {refused.reason}"
        r.problems.append(Problem(shown(), line, col, why))
        return None
    return chosen


def shown_sql_path(runbook_shown: Path, runbook_path: Path, file: Path) -> str:
    """Name a .sql file the way the runbook was named: relative when the runbook was."""
    try:
        return str(runbook_shown.parent / file.resolve().relative_to(runbook_path.resolve().parent))
    except ValueError:
        return str(file)
