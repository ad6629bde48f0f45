"""`cutover schema`: a JSON Schema (draft-07) of runbook.toml, built from the key tables the
loader checks against (keys.py), with their doc strings, so an editor that reads TOML schemas
(taplo, Even Better TOML: `#:schema ./runbook.schema.json` on the runbook's first line)
completes and checks what the loader will accept. Only this module says how the tables nest."""

from __future__ import annotations

from typing import Any

from cutover.runbook import keys as k
from cutover.runbook.keys import Keys

DRAFT = "http://json-schema.org/draft-07/schema#"
# As durations.py reads them: 30s, 10m, 24h, 7d (a decimal allowed).
DURATION = r"^\s*[0-9]+(\.[0-9]+)?\s*[smhd]\s*$"
IDS = {"type": "array", "items": {"type": "string", "pattern": k.ID.pattern}}


def _type(kind: Any) -> dict[str, Any]:
    if kind == k.Duration:
        return {"type": "string", "pattern": DURATION}
    if kind == k.Row:
        return {
            "anyOf": [
                {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
                {"type": "integer", "minimum": 1},
            ]
        }
    if kind == k.TableOrArray:
        return {"type": ["object", "array"]}
    if kind == k.StringOrTable:
        return {"type": ["string", "object"]}
    if isinstance(kind, tuple):
        return {"type": "number"}
    return {
        "type": {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}[
            kind
        ]
    }


def _table(
    keys: Keys,
    nested: dict[str, dict[str, Any]] | None = None,
    required: tuple[str, ...] = (),
    title: str = "",
) -> dict[str, Any]:
    """An object holding exactly `keys`: each key's type (or its `nested` schema) and doc."""
    nested = nested or {}
    properties = {}
    for name, kind in keys.items():
        prop = dict(nested.get(name) or _type(kind))
        prop["description"] = keys.docs[name]
        properties[name] = prop
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if title:
        out["description"] = title
    out["properties"] = properties
    if required:
        out["required"] = list(required)
    return out


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _comparison(keys: Keys, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    nested = {
        "id": {"type": "string", "pattern": k.ID.pattern},
        "op": _enum(k.OPS),
        "confidence": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1},
        "margin": {"type": "number", "minimum": 0},
        "against": _table(k.AGAINST),
        "distribution": _table(k.DISTRIBUTION, required=("bucket", "count")),
        "new_rows": _table(k.NEW_ROWS, required=("key",)),
        "trend": _table(
            k.TREND,
            {"op": _enum(("<", "<=", ">", ">="))},
            required=("over", "op", "slope"),
        ),
        **(extra or {}),
    }
    return _table(keys, nested, required=("id", "query"))


def _gates() -> dict[str, Any]:
    return {"type": "array", "items": _comparison(k.GATE)}


def _steps() -> dict[str, Any]:
    step = _table(
        k.STEP,
        {"id": {"type": "string", "pattern": k.ID.pattern}, "needs": IDS},
        required=("id", "text"),
    )
    return {"type": "array", "items": step}


def _queries() -> dict[str, Any]:
    sql = _table(
        k.QUERY,
        {"kind": _enum(("sql",)), "statement": {"type": "integer", "minimum": 1}},
        required=("file",),
        title="A SQL query: one read-only statement of a .sql file.",
    )
    column = _table(k.HTTP_COLUMN, {"reduce": _enum(k.REDUCERS)}, required=("path", "reduce"))
    http = _table(
        k.HTTP_QUERY,
        {
            "kind": _enum(("http",)),
            "method": _enum(k.HTTP_METHODS),
            "columns": {
                "type": "object",
                "additionalProperties": {"anyOf": [{"type": "string"}, column]},
            },
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        required=("kind", "url"),
        title="A JSON HTTP endpoint as a query.",
    )
    derived = _table(
        k.DERIVED_QUERY,
        {
            "kind": _enum(("derived",)),
            "from": {**IDS, "minItems": 1},
            "columns": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "string"},
            },
        },
        required=("kind", "from", "columns"),
        title="A query computed from the latest results of other queries.",
    )
    return {"type": "object", "additionalProperties": {"anyOf": [sql, http, derived]}}


def _flag() -> dict[str, Any]:
    kinds = []
    required = {"vercel": ("project", "key"), "file": ("path",), "command": ("get", "set")}
    for kind, own in k.FLAG_BY_KIND.items():
        keys = Keys(
            {
                **{n: (t, k.FLAG_COMMON.docs[n]) for n, t in k.FLAG_COMMON.items()},
                **{n: (t, own.docs[n]) for n, t in own.items()},
            }
        )
        nested = {
            "kind": _enum((kind,)),
            "observed": _table(k.OBSERVED, required=("query", "column")),
        }
        kinds.append(
            _table(keys, nested, required=("kind", *required[kind]), title=f"A {kind} flag.")
        )
    return {"anyOf": kinds}


def _triggers() -> dict[str, Any]:
    query = _comparison(
        k.TRIGGER,
        {
            "severity": _enum(k.SEVERITIES),
            "kind": _enum(("query",)),
            "stages": {**IDS, "minItems": 1},
            "escalate": _table(
                k.ESCALATE,
                {"severity": _enum(("high", "critical"))},
                required=("after", "severity"),
            ),
        },
    )
    manual = _table(
        k.MANUAL_TRIGGER,
        {"kind": _enum(("manual",)), "severity": _enum(k.SEVERITIES)},
        required=("id", "kind"),
        title="Raised and cleared by people: cutover raise|clear ID --note.",
    )
    return {"type": "array", "items": {"anyOf": [query, manual]}}


def schema() -> dict[str, Any]:
    """The whole schema, as a JSON-ready dict."""
    stage = _table(
        k.STAGE,
        {
            "id": {"type": "string", "pattern": k.ID.pattern},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "steps": _steps(),
            "gates": _gates(),
            "use": IDS,
            "auto_rollback": IDS,
        },
        required=("id", "percent"),
    )
    top = _table(
        k.TOP,
        {
            "version": {"type": "integer", "enum": list(k.SUPPORTED_VERSIONS)},
            "database": _table(k.DATABASE, {"pooler": _enum(("session", "transaction"))}),
            "journal": _table(k.JOURNAL),
            "store": _table(
                k.STORE,
                {
                    "kind": _enum(k.STORE_KINDS),
                    "schema": {"type": "string", "pattern": r"^[a-z_][a-z0-9_]{0,62}$"},
                    "cutover": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,99}$"},
                },
            ),
            "flag": _flag(),
            "probes": {
                "type": "object",
                "additionalProperties": _table(
                    k.PROBE, {"method": _enum(k.HTTP_METHODS)}, required=("url",)
                ),
            },
            "queries": _queries(),
            "gatesets": {
                "type": "object",
                "additionalProperties": _table(k.GATESET, {"gates": _gates()}, required=("gates",)),
            },
            "stages": {"type": "array", "minItems": 1, "items": stage},
            "triggers": _triggers(),
            "notify": {
                "type": "array",
                "items": _table(k.NOTIFY, {"kind": _enum(("webhook",))}, ("kind", "url_env")),
            },
            "rollback": _table(k.ROLLBACK, {"steps": _steps(), "gates": _gates()}),
        },
        required=("version", "title", "flag", "stages"),
    )
    return {
        "$schema": DRAFT,
        "title": "cutover runbook.toml",
        **{key: value for key, value in top.items() if key != "description"},
        "description": "A staged traffic cutover, as data (format version 1).",
    }
