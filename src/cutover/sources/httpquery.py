"""A JSON HTTP endpoint as a query (`[queries.X] kind = "http"`): fetch it, and turn the
response into rows and columns by JSONPath (RFC 9535), so gates, triggers, panels and
evidence read it as they read SQL. Never raises for the endpoint's trouble: the result
carries the error and its typed cause."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cutover.base.inert import inert
from cutover.runbook.model import Query
from cutover.runbook.templates import expand_env
from cutover.sources import httpclient
from cutover.sources.caps import MAX_ROWS, cap_row, cap_text
from cutover.sources.probes import expand_headers, failure_reason, redact_url, scrub_secrets
from cutover.sources.results import Cause, QueryResult

if TYPE_CHECKING:  # httpx and jsonpath are imported when an http query is read or run
    import httpx

    from cutover.sources.httpclient import Clients

# A metrics or logs answer is kilobytes; anything near this is not what the runbook meant.
MAX_BODY_BYTES = 8 * 1024 * 1024


def _cell(value: Any) -> Any:
    """A JSON value as a cell: scalars as they are, an object or array as compact JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def reduced(reducer: str, found: list[Any]) -> Any:
    """Every match of a column's JSONPath made one value: `count` counts them; `max`, `min`
    and `sum` take numbers (true reads as 1, false as 0) and are None (NULL: a WAIT) when
    nothing matched, or when a match is not a number, since no maximum of those is known.

    >>> reduced("max", [6.4e8, 1.95e9]), reduced("count", []), reduced("sum", [True, 2])
    (1950000000.0, 0, 3)
    >>> reduced("max", []) is None, reduced("min", [1, "n/a"]) is None
    (True, True)
    """
    if reducer == "count":
        return len(found)
    numbers = []
    for value in found:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or value != value:  # text, null, NaN
            return None
        numbers.append(value)
    if not numbers:
        return None
    if reducer == "sum":
        return sum(numbers)
    return max(numbers) if reducer == "max" else min(numbers)


def extract(
    doc: Any,
    rows: str | None,
    columns: Mapping[str, str],
    reduce: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(columns, rows) of a parsed JSON document.

    `rows` selects the row nodes (every node it matches; one matched array stands for its
    items, so "$.logs" reads like "$.logs[*]"); None makes the document one row. With
    `columns`, each column is the first match of its JSONPath within the row (None when
    it matches nothing), or, for a column in `reduce`, every match made one (`reduced`);
    without, an object row's scalar members are its columns and any other row is one
    column, `value`.

    >>> extract({"status": "ok", "processors_available": True}, None, {})
    (('status', 'processors_available'), [('ok', True)])
    >>> doc = [{"unit": "bytes", "values": [{"value": 1.0}, {"value": 2.5}]}]
    >>> extract(doc, "$[*]", {"memory_bytes": "$.values[-1].value", "unit": "$.unit"})
    (('memory_bytes', 'unit'), [(2.5, 'bytes')])
    >>> extract({"logs": [{"message": "a"}, {"message": "b"}]}, "$.logs", {})
    (('message',), [('a',), ('b',)])
    >>> series = [{"values": [{"value": 6e8}]}, {"values": [{"value": 1.95e9}]}]
    >>> extract(series, None, {"memory_bytes": "$[*].values[-1].value"}, {"memory_bytes": "max"})
    (('memory_bytes',), [(1950000000.0,)])
    """
    import jsonpath

    if rows is None:
        nodes = [doc]
    else:
        nodes = jsonpath.findall(rows, doc)
        if len(nodes) == 1 and isinstance(nodes[0], list):
            nodes = list(nodes[0])
    if columns:
        compiled = {name: jsonpath.compile(path) for name, path in columns.items()}
        reduce = reduce or {}
        out = []
        for node in nodes:
            row = []
            for name, path in compiled.items():
                found = path.findall(node) if isinstance(node, dict | list) else []
                if name in reduce:
                    row.append(reduced(reduce[name], found))
                else:
                    row.append(_cell(found[0]) if found else None)
            out.append(tuple(row))
        return tuple(compiled), out
    names: dict[str, None] = {}
    for node in nodes:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(value, dict | list):
                    names.setdefault(str(key), None)
        else:
            names.setdefault("value", None)
    order = tuple(names)
    out = []
    for node in nodes:
        if isinstance(node, dict):
            by_name = {str(k): v for k, v in node.items()}
            out.append(tuple(_cell(by_name.get(name)) for name in order))
        else:
            out.append(tuple(_cell(node) if name == "value" else None for name in order))
    return order, out


class SqlRunner(Protocol):
    async def run(self, query: Query, *args: object) -> QueryResult: ...


async def run_query(
    runner: SqlRunner | None,
    query: Query,
    *args: object,
    environ: Mapping[str, str],
    clients: Clients | None = None,
) -> QueryResult:
    """The one dispatch: an http query is fetched over HTTP, any other runs as SQL on
    `runner` (which an http query never touches: it may be None, or its database down). A
    derived query is not run: it is computed from the others' results (sources.derived)."""
    assert query.kind != "derived", f"{query.id} is derived: compute it, do not run it"
    if query.kind == "http":
        return await run_http(query, environ=environ, clients=clients)
    assert runner is not None, f"{query.id} is SQL and needs a database"
    return await runner.run(query, *args)


async def run_http(
    query: Query,
    *,
    environ: Mapping[str, str] = os.environ,
    client: httpx.AsyncClient | None = None,
    max_rows: int = MAX_ROWS,
    clients: Clients | None = None,
) -> QueryResult:
    """Fetch the query's endpoint once and read its rows. An error names the URL without
    credentials and the variable a header needs, never a header's value. `clients`: the
    session's clients, one per destination (without, a client for this one request)."""
    started = time.monotonic()
    ran_at = datetime.now(UTC)

    def failed(reason: str, cause: Cause) -> QueryResult:
        return QueryResult(
            query.id,
            ran_at=ran_at,
            error=cap_text(reason),
            cause=cause,
            duration_s=time.monotonic() - started,
        )

    try:
        url = expand_env(query.url, environ)
        shown = redact_url(url)
        headers = {"Accept": "application/json", **expand_headers(query.headers, environ)}
    except ValueError as exc:
        return failed(f"{query.id}: {exc}", Cause.FAILED)
    request: dict[str, Any] = {"headers": headers}
    if query.json is not None:
        request["json"] = query.json
    # Only once there is a request to send, and off the loop: the SQL queries sent beside
    # this one are answered meanwhile.
    await httpclient.ready("jsonpath")
    httpx = httpclient.httpx()
    try:
        async with asyncio.timeout(query.timeout_s):
            if client is None and clients is not None:
                client = clients.for_url(url)
                request["timeout"] = query.timeout_s  # a shared client has no timeout of ours
            if client is None:
                async with httpclient.client(timeout=query.timeout_s) as own:
                    status, body = await _fetch(own, query.method, url, request)
            else:
                status, body = await _fetch(client, query.method, url, request)
    except (TimeoutError, httpx.TimeoutException):
        return failed(
            f"timed out after {query.timeout_s:g}s: {query.method} {shown}", Cause.TIMEOUT
        )
    except _TooLarge:
        return failed(
            f"{query.method} {shown} answered more than {MAX_BODY_BYTES // 2**20} MiB",
            Cause.FAILED,
        )
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        reason = scrub_secrets(failure_reason(exc), url)
        return failed(f"unreachable: {query.method} {shown}: {reason}", Cause.UNREACHABLE)
    if not 200 <= status < 300:  # a redirect or an informational answer is no answer either
        return failed(f"HTTP {status} from {query.method} {shown}{_said(body)}", Cause.FAILED)
    try:
        doc = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return failed(
            f"{query.method} {shown} did not answer JSON ({len(body)} bytes)", Cause.FAILED
        )
    import jsonpath

    try:
        columns, rows = extract(doc, query.rows, query.columns, query.reduce)
    except jsonpath.JSONPathError as exc:
        return failed(f"{query.id}: cannot read the response: {exc}", Cause.FAILED)
    return QueryResult(
        query.id,
        columns=columns,
        rows=tuple(cap_row(r) for r in rows[:max_rows]),
        ran_at=ran_at,
        duration_s=time.monotonic() - started,
        truncated=len(rows) > max_rows,
    )


class _TooLarge(Exception):
    pass


async def _fetch(
    client: httpx.AsyncClient, method: str, url: str, request: dict[str, Any]
) -> tuple[int, bytes]:
    async with client.stream(method, url, **request) as response:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLarge
            chunks.append(chunk)
        return response.status_code, b"".join(chunks)


def _said(body: bytes) -> str:
    """What an error response says, when it says it in the usual places (Render's and
    Vercel's `message`), bounded and inert; nothing otherwise."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    message = None
    if isinstance(doc, dict):
        message = doc.get("message")
        if message is None and isinstance(doc.get("error"), dict):
            message = doc["error"].get("message")
        if message is None and isinstance(doc.get("detail"), str):
            message = doc["detail"]
    return f": {inert(str(message), max_len=200)}" if message else ""
