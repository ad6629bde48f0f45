"""The keys each table of runbook.toml may hold, with their types: one place that the loader
checks against (unknown keys get a "did you mean") and that says what the format is."""

from __future__ import annotations

import re
from typing import Any

SUPPORTED_VERSIONS = (1,)


OPS = ("<", "<=", ">", ">=", "==", "!=")


SEVERITIES = ("critical", "high", "medium")


FLAG_KINDS = ("vercel", "file", "command")


ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


MIN_STATEMENT_TIMEOUT_S = 0.001


MAX_STATEMENT_TIMEOUT_S = 24 * 86400.0


# What each table may hold. A type tuple means "any of these"; `Duration` is a string
# that must parse as one. Unknown keys are errors with a "did you mean".
Duration = "duration"


Row = "row"  # a table of column = value pairs, or a 1-based row number


Number = (int, float)


TableOrArray = "table or array"  # a JSON body; a query's `needs`


TOP = {
    "version": int,
    "title": str,
    "database": dict,
    "journal": dict,
    "flag": dict,
    "probes": dict,
    "queries": dict,
    "stages": list,
    "triggers": list,
    "notify": list,
    "rollback": dict,
}


ROLLBACK = {"title": str, "steps": list, "gates": list}


QUERY_PARAMS = ("rolled_back_at",)


DATABASE = {"dsn_env": str, "statement_timeout": Duration, "pooler": str}


JOURNAL = {"path": str, "key_file": str}


FLAG_COMMON = {"kind": str, "observed": dict}


FLAG_BY_KIND = {
    "vercel": {
        "project": str,
        "key": str,
        "target": str,
        "token_env": str,
        "team_id": str,
        "redeploy": bool,
    },
    "file": {"path": str},
    "command": {"get": str, "set": str, "timeout": Duration, "env": list},
}


OBSERVED = {"query": str, "column": str}


PROBE = {
    "url": str,
    "method": str,
    "expect_status": int,
    "expect_json": dict,
    "expect_headers": dict,
    "deprecation": bool,
    "timeout": Duration,
    "json": TableOrArray,
    "headers": dict,
}


QUERY = {
    "title": str,
    "file": str,
    "statement": int,
    "refresh": Duration,
    "needs": TableOrArray,
    "params": list,
    "kind": str,
}


HTTP_QUERY = {
    "title": str,
    "help": str,
    "kind": str,
    "url": str,
    "method": str,
    "headers": dict,
    "json": TableOrArray,
    "timeout": Duration,
    "rows": str,
    "columns": dict,
    "refresh": Duration,
}


QUERY_KINDS = ("sql", "http")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


STAGE = {
    "id": str,
    "title": str,
    "percent": int,
    "hold": Duration,
    "steps": list,
    "gates": list,
    "max_gap": Duration,
    "checkpoint": Duration,
    "auto_rollback": list,
}


STEP = {
    "id": str,
    "text": str,
    "probe": str,
    "after": Duration,
    "needs": list,
    "note_required": bool,
}


COMPARISON = {
    "id": str,
    "title": str,
    "query": str,
    "column": str,
    "row_count": bool,
    "op": str,
    "value": Number,
    "successes": str,
    "trials": str,
    "confidence": Number,
    "row": Row,
    "against": dict,
    "margin": Number,
    "distribution": dict,
    "new_rows": dict,
}


AGAINST = {"row": Row, "baseline": str}


DISTRIBUTION = {"bucket": str, "count": str}


NEW_ROWS = {"key": str}


# A gate may be optional: it does not count while its query lacks a column it `needs`
# (the v2-row gate on a database without pipeline_version), and counts like any other once
# the column exists.
GATE = {**COMPARISON, "optional": bool}


TRIGGER = {
    **COMPARISON,
    "severity": str,
    "for": Duration,
    "respond_within": Duration,
    "kind": str,
}


MANUAL_TRIGGER = {
    "id": str,
    "title": str,
    "severity": str,
    "respond_within": Duration,
    "kind": str,
}


NOTIFY = {"kind": str, "url_env": str}


TRIGGER_KINDS = ("query", "manual")


TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "a table",
    list: "an array",
    float: "a number",
}


def type_name(expected: Any) -> str:
    if expected == Duration:
        return 'a duration string like "30s", "24h" or "7d"'
    if expected == Row:
        return 'a table like { pipeline_version = "v2" } or a row number like 3'
    if expected == TableOrArray:
        return "a table or an array"
    if isinstance(expected, tuple):
        return "a number"
    return TYPE_NAMES.get(expected, expected.__name__)


def has_type(value: Any, expected: Any) -> bool:
    # bool is an int in Python but never a number in a runbook.
    if expected == Duration:
        return isinstance(value, str)
    if expected == Row:
        return isinstance(value, dict) or (isinstance(value, int) and not isinstance(value, bool))
    if expected == TableOrArray:
        return isinstance(value, dict | list)
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
