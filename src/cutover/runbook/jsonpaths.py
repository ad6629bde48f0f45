"""JSONPaths (RFC 9535) in the runbook's http queries, judged when the runbook loads: a path
that cannot compile is a problem at its file:line:col, not a query that fails at 3 a.m."""

from __future__ import annotations

from cutover.runbook.vetted import MEMO


def jsonpath_problem(path: str) -> str | None:
    """Why `path` is not a JSONPath query, or None.

    >>> jsonpath_problem("$.values[-1].value") is None
    True
    >>> jsonpath_problem("values")
    'not a JSONPath: it starts with $, like "$.values[-1].value"'
    """
    if not path.strip().startswith("$"):
        return 'not a JSONPath: it starts with $, like "$.values[-1].value"'
    if MEMO.recall("jsonpath", path) is not None:
        return None  # compiled on an earlier run, by the same library
    import jsonpath

    try:
        jsonpath.compile(path)
    except jsonpath.JSONPathError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not a JSONPath ({first})"
    MEMO.keep("jsonpath", path, True)
    return None
