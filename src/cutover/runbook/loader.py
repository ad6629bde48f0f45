"""Load `runbook.toml` into typed objects, reporting every mistake with file:line:col."""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cutover.runbook import sqlfile, sqlguard, textfile, tomlpos
from cutover.runbook.durations import parse_duration
from cutover.runbook.jsonpaths import jsonpath_problem
from cutover.runbook.model import (
    DEFAULT_CONFIDENCE,
    DEFAULT_DISTRIBUTION_MARGIN,
    PREVIOUS,
    Against,
    Comparison,
    Database,
    Distribution,
    Flag,
    Gate,
    NewRows,
    Notify,
    Observed,
    Probe,
    Query,
    Rollback,
    RowSelector,
    Runbook,
    Stage,
    Step,
    Trigger,
    boundary,
)
from cutover.runbook.problems import Problem, ProblemsFound
from cutover.runbook.templates import template_problem

SUPPORTED_VERSIONS = (1,)
OPS = ("<", "<=", ">", ">=", "==", "!=")
SEVERITIES = ("critical", "high", "medium")
FLAG_KINDS = ("vercel", "file", "command")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MIN_STATEMENT_TIMEOUT_S = 0.001
MAX_STATEMENT_TIMEOUT_S = 24 * 86400.0

# What each table may hold. A type tuple means "any of these"; `Duration` is a string
# that must parse as one. Unknown keys are errors with a "did you mean".
Duration = "duration"
Row = "row"  # a table of column = value pairs, or a 1-based row number
Number = (int, float)
TableOrArray = "table or array"  # a JSON body; a query's `needs`
_TOP = {
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
_ROLLBACK = {"title": str, "steps": list, "gates": list}
QUERY_PARAMS = ("rolled_back_at",)
_DATABASE = {"dsn_env": str, "statement_timeout": Duration, "pooler": str}
_JOURNAL = {"path": str}
_FLAG_COMMON = {"kind": str, "observed": dict}
_FLAG_BY_KIND = {
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
_OBSERVED = {"query": str, "column": str}
_PROBE = {
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
_QUERY = {
    "title": str,
    "file": str,
    "statement": int,
    "refresh": Duration,
    "needs": TableOrArray,
    "params": list,
    "kind": str,
}
_HTTP_QUERY = {
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
_STAGE = {
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
_STEP = {
    "id": str,
    "text": str,
    "probe": str,
    "after": Duration,
    "needs": list,
    "note_required": bool,
}
_COMPARISON = {
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
_AGAINST = {"row": Row, "baseline": str}
_DISTRIBUTION = {"bucket": str, "count": str}
_NEW_ROWS = {"key": str}
# A gate may be optional: it does not count while its query lacks a column it `needs`
# (the v2-row gate on a database without pipeline_version), and counts like any other once
# the column exists.
_GATE = {**_COMPARISON, "optional": bool}
_TRIGGER = {
    **_COMPARISON,
    "severity": str,
    "for": Duration,
    "respond_within": Duration,
    "kind": str,
}
_MANUAL_TRIGGER = {
    "id": str,
    "title": str,
    "severity": str,
    "respond_within": Duration,
    "kind": str,
}
_NOTIFY = {"kind": str, "url_env": str}
TRIGGER_KINDS = ("query", "manual")

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "a table",
    list: "an array",
    float: "a number",
}


def _type_name(expected: Any) -> str:
    if expected == Duration:
        return 'a duration string like "30s", "24h" or "7d"'
    if expected == Row:
        return 'a table like { pipeline_version = "v2" } or a row number like 3'
    if expected == TableOrArray:
        return "a table or an array"
    if isinstance(expected, tuple):
        return "a number"
    return _TYPE_NAMES.get(expected, expected.__name__)


def _is(value: Any, expected: Any) -> bool:
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


class _Reader:
    """Walks the parsed TOML, collecting problems with their positions instead of stopping."""

    def __init__(self, file: Path, text: str, shown_as: str):
        self.file = file
        self.shown_as = shown_as
        self.text = text
        self.problems: list[Problem] = []

    @functools.cached_property
    def positions(self) -> dict:
        """Where each key is in the file: scanned only when there is a problem to place."""
        return tomlpos.key_positions(self.text)

    def problem(self, path: tuple, message: str, *, at_value: bool = False) -> None:
        pos = tomlpos.nearest(self.positions, path)
        line, col = (pos.value_line, pos.value_col) if at_value else (pos.line, pos.col)
        self.problems.append(Problem(self.shown_as, line, col, message))

    def table(self, data: Any, path: tuple, allowed: dict[str, Any], *, what: str) -> dict:
        """The keys of one table that have the right type; problems for the rest."""
        if not isinstance(data, dict):
            self.problem(path, f"{what} must be a table", at_value=True)
            return {}
        good: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                hint = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                suggestion = (
                    f"; did you mean {hint[0]!r}?"
                    if hint
                    else (f"; {what} takes {', '.join(sorted(allowed))}")
                )
                self.problem((*path, key), f"unknown key {key!r} in {what}{suggestion}")
                continue
            expected = allowed[key]
            if not _is(value, expected):
                self.problem((*path, key), f"{key} must be {_type_name(expected)}", at_value=True)
                continue
            if isinstance(value, float) and not math.isfinite(value):
                # TOML allows nan and inf; no threshold or setting can mean them.
                message = f"{key} must be a finite number, not {value}"
                self.problem((*path, key), message, at_value=True)
                continue
            if expected == Duration:
                try:
                    value = parse_duration(value)
                except ValueError as exc:
                    self.problem((*path, key), f"{key}: {exc}", at_value=True)
                    continue
            good[key] = value
        return good

    def require(self, table: dict, raw: Any, path: tuple, key: str, what: str) -> bool:
        if key in table:
            return True
        # A key with the wrong type was already reported; don't report it missing too.
        if not (isinstance(raw, dict) and key in raw):
            self.problem(path, f"{what} needs `{key}`")
        return False

    def ident(self, table: dict, path: tuple, what: str) -> str | None:
        value = table.get("id")
        if value is None:
            return None
        if not _ID.match(value):
            self.problem(
                (*path, "id"),
                f"{what} id {value!r} must be lower-case letters, digits, "
                "_ or -, starting with a letter or digit",
                at_value=True,
            )
        return value

    def items(self, data: Any, path: tuple, what: str) -> list[tuple[tuple, Any]]:
        if not isinstance(data, list):
            return []
        return [((*path, i), item) for i, item in enumerate(data)]


def load(path: Path | str, *, shown_as: str | None = None) -> Runbook:
    """Load and validate a runbook; raise ProblemsFound listing every problem found."""
    path = Path(path)
    shown = shown_as or str(path)
    try:
        text = textfile.read_text(path)
    except FileNotFoundError:
        raise ProblemsFound(
            [Problem(shown, 1, 1, "no runbook here; pass --runbook PATH or set CUTOVER_RUNBOOK")]
        ) from None
    except textfile.NotUtf8 as exc:
        raise ProblemsFound(
            [Problem(shown, exc.line, exc.col, f"cannot read the runbook: {exc}")]
        ) from None
    except OSError as exc:
        raise ProblemsFound([Problem(shown, 1, 1, f"cannot read the runbook: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col, message = tomlpos.decode_error(exc, text)
        raise ProblemsFound([Problem(shown, line, col, f"not valid TOML: {message}")]) from None
    reader = _Reader(path, text, shown)
    runbook = _build(reader, data, path.resolve())
    if reader.problems:
        raise ProblemsFound(
            sorted(reader.problems, key=lambda p: (p.file != shown, p.file, p.line, p.col))
        )
    assert runbook is not None
    return runbook


def _build(r: _Reader, data: dict, path: Path) -> Runbook | None:
    top = r.table(data, (), _TOP, what="the runbook")
    for key in ("version", "title", "flag", "stages"):
        r.require(top, data, (), key, "the runbook")
    version = top.get("version", 1)
    if "version" in top and version not in SUPPORTED_VERSIONS:
        r.problem(
            ("version",),
            f"runbook version {version} is not supported; this cutover "
            f"reads version {', '.join(map(str, SUPPORTED_VERSIONS))}",
            at_value=True,
        )
    folder = path.parent

    database = _database(r, data.get("database", {}))
    journal = r.table(data.get("journal", {}), ("journal",), _JOURNAL, what="[journal]")
    journal_path = folder / journal.get("path", ".cutover/journal.jsonl")
    probes = _probes(r, top.get("probes", {}))
    queries = _queries(r, top.get("queries", {}), folder)
    flag = _flag(r, data.get("flag"), folder, queries) if "flag" in data else None
    stages = _stages(r, data.get("stages", []), queries, probes)
    triggers = tuple(_triggers(r, data.get("triggers", []), queries))
    _auto_rollback(r, data.get("stages", []), stages, triggers)
    _baselines(r, data.get("stages", []), data.get("triggers", []))
    notify = _notify(r, data.get("notify", []))
    rollback = _rollback(r, top["rollback"], stages, queries, probes) if "rollback" in top else None
    if r.problems or flag is None:
        return None
    return Runbook(
        path=path,
        title=top["title"],
        version=version,
        database=database,
        journal_path=journal_path,
        flag=flag,
        probes=probes,
        queries=queries,
        stages=stages,
        triggers=triggers,
        notify=notify,
        rollback=rollback,
    )


def _rollback(
    r: _Reader,
    raw: dict,
    stages: tuple[Stage, ...],
    queries: dict[str, Query],
    probes: dict[str, Probe],
) -> Rollback:
    """`[rollback]`: steps and gates, the same shapes as a stage's, for after any rollback."""
    path = ("rollback",)
    table = r.table(raw, path, _ROLLBACK, what="[rollback]")
    steps = _steps(r, raw.get("steps", []), path, probes, what="[[rollback.steps]]")
    gates = _gates(r, raw.get("gates", []), path, queries, what="[[rollback.gates]]")
    gate_ids = {g.id for g in gates}
    for index, step in enumerate(steps):
        for needed in step.needs:
            if needed not in gate_ids:
                _unknown(r, (*path, "steps", index, "needs"), "rollback gate", needed, gate_ids)
    # `cutover signoff STEP` must know which step it signs.
    for index, step in enumerate(steps):
        clash = next((s.id for s in stages if any(x.id == step.id for x in s.steps)), None)
        if clash:
            r.problem(
                (*path, "steps", index, "id"),
                f"rollback step id {step.id!r} is also a step of stage {clash!r}: "
                "`cutover signoff` could not tell them apart",
                at_value=True,
            )
    return Rollback(title=table.get("title", "After a rollback"), steps=steps, gates=gates)


def _notify(r: _Reader, raw: Any) -> tuple[Notify, ...]:
    out: list[Notify] = []
    for path, item in r.items(raw, ("notify",), "notify"):
        table = r.table(item, path, _NOTIFY, what="[[notify]]")
        ok = all([r.require(table, item, path, key, "[[notify]]") for key in ("kind", "url_env")])
        if "kind" in table and table["kind"] != "webhook":
            r.problem(
                (*path, "kind"),
                f'notify kind {table["kind"]!r} is not known; use "webhook" (Slack-compatible)',
                at_value=True,
            )
            ok = False
        if ok:
            out.append(Notify(kind="webhook", url_env=table["url_env"]))
    return tuple(out)


def _ids(r: _Reader, raw: Any, path: tuple, what: str) -> tuple[str, ...]:
    """A list of ids (strings); a problem for anything else."""
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        r.problem(path, f'{what} must be a list of ids, like ["success"]', at_value=True)
        return ()
    return tuple(raw)


def _auto_rollback(
    r: _Reader, raw: Any, stages: tuple[Stage, ...], triggers: tuple[Trigger, ...]
) -> None:
    """Only critical query triggers may arm the watcher's rollback: a human-raised trigger
    is a human's to act on, and a lesser severity is not an emergency."""
    by_id = {t.id: t for t in triggers}
    for path, item in r.items(raw, ("stages",), "stage"):
        if not isinstance(item, dict) or "auto_rollback" not in item:
            continue
        for trigger_id in _ids(r, item["auto_rollback"], (*path, "auto_rollback"), "auto_rollback"):
            trigger = by_id.get(trigger_id)
            where = (*path, "auto_rollback")
            if trigger is None:
                _unknown(r, where, "trigger", trigger_id, by_id)
            elif trigger.kind == "manual" or trigger.severity != "critical":
                r.problem(
                    where,
                    f"auto_rollback may arm critical query triggers only; {trigger_id} is "
                    f"{'manual' if trigger.kind == 'manual' else trigger.severity}",
                    at_value=True,
                )


def _database(r: _Reader, raw: Any) -> Database:
    table = r.table(raw, ("database",), _DATABASE, what="[database]")
    pooler = table.get("pooler", "session")
    if pooler not in ("session", "transaction"):
        r.problem(
            ("database", "pooler"),
            f'pooler must be "session" or "transaction", not {pooler!r}',
            at_value=True,
        )
        pooler = "session"
    timeout = table.get("statement_timeout", Database.statement_timeout_s)
    if not MIN_STATEMENT_TIMEOUT_S <= timeout <= MAX_STATEMENT_TIMEOUT_S:
        # Postgres reads 0 as "no limit" and refuses more than 2^31-1 ms.
        r.problem(
            ("database", "statement_timeout"),
            "statement_timeout must be at least 0.001s (0 would let a query run forever) "
            "and at most 24d (Postgres's limit)",
            at_value=True,
        )
    return Database(
        dsn_env=table.get("dsn_env", Database.dsn_env),
        statement_timeout_s=table.get("statement_timeout", Database.statement_timeout_s),
        pooler=pooler,
    )


def _flag(r: _Reader, raw: Any, folder: Path, queries: dict[str, Query]) -> Flag | None:
    path = ("flag",)
    if not isinstance(raw, dict):
        r.problem(path, "[flag] must be a table", at_value=True)
        return None
    kind = raw.get("kind")
    if kind not in FLAG_KINDS:
        if "kind" not in raw:
            r.problem(path, f"[flag] needs `kind`: one of {', '.join(FLAG_KINDS)}")
        else:
            r.problem(
                (*path, "kind"),
                f"flag kind {kind!r} is not known; use one of {', '.join(FLAG_KINDS)}",
                at_value=True,
            )
        return None
    table = r.table(
        raw, path, {**_FLAG_COMMON, **_FLAG_BY_KIND[kind]}, what=f"[flag] of kind {kind!r}"
    )
    required = {"vercel": ("project", "key"), "file": ("path",), "command": ("get", "set")}
    for key in required[kind]:
        r.require(table, raw, path, key, f"[flag] of kind {kind!r}")
    if kind == "command" and "set" in table and "{percent}" not in table["set"]:
        r.problem((*path, "set"), "the set command must contain {percent}", at_value=True)
    observed = None
    if "observed" in table:
        obs = r.table(table["observed"], (*path, "observed"), _OBSERVED, what="flag.observed")
        for key in ("query", "column"):
            r.require(obs, table["observed"], (*path, "observed"), key, "flag.observed")
        if "query" in obs and obs["query"] not in queries:
            _unknown(r, (*path, "observed", "query"), "query", obs["query"], queries)
        if "query" in obs and "column" in obs:
            observed = Observed(query=obs["query"], column=obs["column"])
    return Flag(
        kind=kind,
        project=table.get("project", ""),
        key=table.get("key", ""),
        target=table.get("target", "production"),
        token_env=table.get("token_env", "VERCEL_TOKEN"),
        team_id=table.get("team_id"),
        redeploy=table.get("redeploy", True),
        path=(folder / table["path"]) if "path" in table else None,
        get=table.get("get", ""),
        set=table.get("set", ""),
        timeout_s=table.get("timeout", 30.0),
        env=_flag_env(r, table.get("env", []), (*path, "env")),
        observed=observed,
    )


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _flag_env(r: _Reader, names: list, path: tuple) -> tuple[str, ...]:
    """[flag] env: the names of the variables a command flag's commands are given."""
    good = []
    for i, item in enumerate(names):
        if isinstance(item, str) and _ENV_NAME.match(item):
            good.append(item)
        else:
            r.problem(
                (*path, i),
                f'[flag] env holds environment variable names like "KUBECONFIG"; {item!r} '
                "is not one",
                at_value=True,
            )
    return tuple(dict.fromkeys(good))


def _probes(r: _Reader, raw: dict) -> dict[str, Probe]:
    probes: dict[str, Probe] = {}
    for probe_id, item in raw.items():
        path = ("probes", probe_id)
        table = r.table(item, path, _PROBE, what=f"[probes.{probe_id}]")
        if not r.require(table, item, path, "url", f"[probes.{probe_id}]"):
            continue
        if not _ID.match(probe_id):
            r.problem(path, f"probe id {probe_id!r} must be lower-case letters, digits, _ or -")
        _template(r, table["url"], (*path, "url"))
        probes[probe_id] = Probe(
            id=probe_id,
            url=table["url"],
            method=table.get("method", "POST" if "json" in table else "GET").upper(),
            expect_status=table.get("expect_status", 200),
            expect_json=table.get("expect_json", {}),
            expect_headers=table.get("expect_headers", {}),
            deprecation=table.get("deprecation", False),
            timeout_s=table.get("timeout", 10.0),
            json=table.get("json"),
            headers=_headers(r, table.get("headers", {}), (*path, "headers")),
        )
    return probes


_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _template(r: _Reader, text: str, path: tuple) -> None:
    """A URL or header template whose ${…} references cannot be expanded is a problem now,
    not a failed request every refresh."""
    problem = template_problem(text)
    if problem:
        r.problem(path, problem, at_value=True)


def _headers(r: _Reader, raw: dict, path: tuple) -> dict[str, str]:
    """Request headers whose values come from the environment: a variable's name (its value
    is the header's) or a template ("Bearer ${RENDER_API_KEY}"). A literal value would be a
    secret written in the runbook, and a `:-default` would be one too."""
    good: dict[str, str] = {}
    for name, value in raw.items():
        where = (*path, name)
        if not _HEADER_NAME.match(name):
            r.problem(where, f"{name!r} is not an HTTP header name")
            continue
        if not isinstance(value, str):
            r.problem(where, f"header {name} must be a string", at_value=True)
            continue
        if _ENV_NAME.match(value):
            good[name] = "${" + value + "}"
            continue
        problem = template_problem(value)
        if problem is None and "${" not in value:
            problem = (
                f"header {name}'s value comes from the environment: name the variable that "
                f'holds it ("RENDER_API_KEY") or write a template ("Bearer ${{RENDER_API_KEY}}"); '
                "a literal would put a secret in the runbook"
            )
        elif problem is None and ":-" in value:
            problem = (
                f"header {name} may not have a :-default: it would put a secret in the runbook"
            )
        if problem:
            r.problem(where, problem, at_value=True)
            continue
        good[name] = value
    return good


def _queries(r: _Reader, raw: dict, folder: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
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
        if not _ID.match(query_id):
            r.problem(path, f"query id {query_id!r} must be lower-case letters, digits, _ or -")
        if kind == "http":
            query = _http_query(r, query_id, item, path)
            if query is not None:
                queries[query_id] = query
            continue
        table = r.table(item, path, _QUERY, what=f"[queries.{query_id}]")
        if not r.require(table, item, path, "file", f"[queries.{query_id}]"):
            continue
        file = folder / table["file"]
        statement = _statement(r, (*path, "file"), file, table.get("statement"))
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
            needs=_needs(r, table.get("needs", {}), (*path, "needs")),
            params=_params(r, table.get("params", []), (*path, "params")),
        )
    return queries


_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _needs(r: _Reader, raw: list | dict, path: tuple) -> dict[str, str]:
    """`needs = ["pipeline_version"]`, or with what adding each gives:
    `needs = { pipeline_version = "add it to see the v1/v2 split" }`."""
    pairs = [(c, "") for c in raw] if isinstance(raw, list) else list(raw.items())
    good: dict[str, str] = {}
    for column, hint in pairs:
        if not isinstance(column, str) or not _COLUMN.match(column):
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


def _params(r: _Reader, raw: list, path: tuple) -> tuple[str, ...]:
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


def _http_query(r: _Reader, query_id: str, item: dict, path: tuple) -> Query | None:
    """A JSON HTTP endpoint as a query: `rows` (JSONPath) picks the rows, `columns` maps a
    column to a JSONPath within a row; without `rows` the document is one row."""
    what = f'[queries.{query_id}] of kind "http"'
    table = r.table(item, path, _HTTP_QUERY, what=what)
    if not r.require(table, item, path, "url", what):
        return None
    ok = True
    _template(r, table["url"], (*path, "url"))
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
        ok = _jsonpath(r, rows, (*path, "rows"), "rows") and ok
    columns: dict[str, str] = {}
    for column, where in table.get("columns", {}).items():
        at = (*path, "columns", column)
        if not _COLUMN.match(column):
            r.problem(at, f"column name {column!r} must be letters, digits and _")
            ok = False
        elif not isinstance(where, str):
            r.problem(
                at, f'columns.{column} must be a JSONPath string, like "$.value"', at_value=True
            )
            ok = False
        elif _jsonpath(r, where, at, f"columns.{column}"):
            columns[column] = where
        else:
            ok = False
    refresh = table.get("refresh", 30.0)
    if refresh < 1:
        r.problem((*path, "refresh"), "refresh must be at least 1s", at_value=True)
    timeout = table.get("timeout", 10.0)
    if not 0 < timeout <= 300:
        r.problem((*path, "timeout"), "timeout must be above 0s and at most 5m", at_value=True)
        ok = False
    headers = _headers(r, table.get("headers", {}), (*path, "headers"))
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
    )


def _jsonpath(r: _Reader, path_text: str, where: tuple, key: str) -> bool:
    problem = jsonpath_problem(path_text)
    if problem:
        r.problem(where, f"{key}: {problem}", at_value=True)
        return False
    return True


def _statement(r: _Reader, path: tuple, file: Path, index: int | None) -> sqlfile.Statement | None:
    shown = shown_sql_path(Path(r.shown_as), r.file, file)
    try:
        statements = sqlfile.read_sql_file(file)
    except FileNotFoundError:
        r.problem(
            path, f"query file {file.name!r} not found (looked in {file.parent})", at_value=True
        )
        return None
    except textfile.NotUtf8 as exc:
        r.problems.append(Problem(shown, exc.line, exc.col, f"cannot read this query file: {exc}"))
        return None
    except OSError as exc:
        r.problem(path, f"cannot read query file {file.name!r}: {exc}", at_value=True)
        return None
    if not statements:
        r.problems.append(Problem(shown, 1, 1, "no SQL statement in this file (only comments?)"))
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
        r.problems.append(
            Problem(shown, line, col, f"a query must be one read-only statement: {refused.reason}")
        )
        return None
    return chosen


def shown_sql_path(runbook_shown: Path, runbook_path: Path, file: Path) -> str:
    """Name a .sql file the way the runbook was named: relative when the runbook was."""
    try:
        return str(runbook_shown.parent / file.resolve().relative_to(runbook_path.resolve().parent))
    except ValueError:
        return str(file)


def _unknown(r: _Reader, path: tuple, what: str, name: str, known: dict) -> None:
    hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if hint:
        suggestion = f"; did you mean {hint[0]!r}?"
    elif known:
        suggestion = f"; known: {', '.join(sorted(known))}"
    else:
        suggestion = f"; the runbook defines no {what}"
    r.problem(path, f"unknown {what} {name!r}{suggestion}", at_value=True)


def _comparison(
    r: _Reader, item: Any, path: tuple, allowed: dict, what: str, queries: dict[str, Query]
) -> tuple[dict, Comparison | None]:
    table = r.table(item, path, allowed, what=what)
    raw = item if isinstance(item, dict) else {}
    # What it compares decides which keys it needs: a constant (`value`), another row or a
    # baseline (`against`, with `margin`), a histogram, a set of keys.
    kind = next((k for k in ("distribution", "new_rows", "against") if k in raw), "value")
    required = ("id", "query", "op", "value") if kind == "value" else ("id", "query", "op")
    ok = all([r.require(table, item, path, key, what) for key in required])
    r.ident(table, path, what)
    if "query" in table and table["query"] not in queries:
        _unknown(r, (*path, "query"), "query", table["query"], queries)
        ok = False
    if "op" in table and table["op"] not in OPS:
        r.problem((*path, "op"), f"op {table['op']!r} is not one of {' '.join(OPS)}", at_value=True)
        ok = False
    has_column, row_count = "column" in table, table.get("row_count", False)
    if kind in ("value", "against") and has_column == bool(row_count):
        r.problem(path, f"{what} needs exactly one of `column` or `row_count = true`")
        ok = False
    if ("successes" in table) != ("trials" in table):
        r.problem(path, f"{what}: `successes` and `trials` go together")
        ok = False
    if "confidence" in table:
        if "successes" not in table and "distribution" not in raw:
            r.problem(
                (*path, "confidence"),
                "confidence needs `successes` and `trials` (or a distribution)",
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
    two = _two_samples(r, table, raw, path, kind)
    if not ok or two is None:
        return table, None
    row, against, distribution, new_rows = two
    margin = table.get("margin", DEFAULT_DISTRIBUTION_MARGIN if distribution else 0.0)
    if kind == "value":
        value = table["value"]
    elif kind == "new_rows":
        value = table.get("value", 0)
    else:
        # The boundary on the difference: a gate and its negated trigger share it.
        value = boundary(table["op"], margin, trigger=allowed is _TRIGGER)
    uses_confidence = "successes" in table or distribution is not None
    return table, Comparison(
        query=table["query"],
        op=table["op"],
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
    )


def _two_samples(
    r: _Reader, table: dict, raw: dict, path: tuple, kind: str
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

    row = _row_selector(r, table["row"], (*path, "row")) if "row" in table else None
    if "row" in table and row is None:
        ok = False
    if row is not None and table.get("row_count"):
        refuse("row", "row picks one row; row_count counts them all")

    against: Against | None = None
    if "against" in table:
        against = _against(r, table["against"], (*path, "against"))
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
        parts = r.table(table["distribution"], where, _DISTRIBUTION, what="distribution")
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
        parts = r.table(table["new_rows"], where, _NEW_ROWS, what="new_rows")
        if r.require(parts, table["new_rows"], where, "key", "new_rows"):
            new_rows = NewRows(parts["key"])
        else:
            ok = False
    if any(
        key in raw and key not in table for key in ("row", "against", "distribution", "new_rows")
    ):
        ok = False  # the wrong type, already said
    return (row, against, distribution, new_rows) if ok else None


def _against(r: _Reader, raw: Any, path: tuple) -> Against | None:
    table = r.table(raw, path, _AGAINST, what="against")
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
        # Which stages exist is checked once every stage is read (_baselines).
        return Against(baseline=table["baseline"])
    row = _row_selector(r, table["row"], (*path, "row"))
    return None if row is None else Against(row=row)


def _row_selector(r: _Reader, raw: dict | int, path: tuple) -> RowSelector | None:
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


def _baselines(r: _Reader, raw_stages: Any, raw_triggers: Any) -> None:
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
                _unknown(r, where, "stage", name, known)
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
            _unknown(r, ("triggers", k, "against", "baseline"), "stage", name, known)


def _unique(r: _Reader, seen: dict[str, tuple], value: str | None, path: tuple, what: str) -> None:
    if value is None:
        return
    if value in seen:
        first = tomlpos.nearest(r.positions, seen[value])
        r.problem(
            (*path, "id"),
            f"duplicate {what} id {value!r} (first at line {first.line})",
            at_value=True,
        )
    else:
        seen[value] = path


def _stages(
    r: _Reader, raw: Any, queries: dict[str, Query], probes: dict[str, Probe]
) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    seen: dict[str, tuple] = {}
    if isinstance(raw, list) and not raw:
        r.problem(("stages",), "the runbook needs at least one [[stages]]")
    previous: tuple[int, tuple] | None = None
    for path, item in r.items(raw, ("stages",), "stage"):
        table = r.table(item, path, _STAGE, what="[[stages]]")
        ok = all([r.require(table, item, path, key, "[[stages]]") for key in ("id", "percent")])
        stage_id = r.ident(table, path, "stage")
        _unique(r, seen, stage_id, path, "stage")
        percent = table.get("percent")
        if percent is not None:
            if not 0 <= percent <= 100:
                r.problem((*path, "percent"), f"percent {percent} is outside 0–100", at_value=True)
                ok = False
            elif previous is not None and percent < previous[0]:
                r.problem(
                    (*path, "percent"),
                    f"percent {percent} is below the previous stage's "
                    f"{previous[0]}; stages must not decrease (roll back instead)",
                    at_value=True,
                )
                ok = False
            previous = (percent, path)
        steps = _steps(r, item.get("steps", []) if isinstance(item, dict) else [], path, probes)
        gates = _gates(r, item.get("gates", []) if isinstance(item, dict) else [], path, queries)
        gate_ids = {g.id for g in gates}
        for index, step in enumerate(steps):
            for needed in step.needs:
                if needed not in gate_ids:
                    _unknown(r, (*path, "steps", index, "needs"), "gate", needed, gate_ids)
                    ok = False
        max_gap = table.get("max_gap", 3600.0)
        if max_gap <= 0:
            r.problem((*path, "max_gap"), "max_gap must be longer than 0s", at_value=True)
            ok = False
        checkpoint = table.get("checkpoint")
        if checkpoint is not None and checkpoint < 60:
            r.problem((*path, "checkpoint"), "checkpoint must be at least 1m", at_value=True)
            ok = False
        if ok and stage_id:
            stages.append(
                Stage(
                    id=stage_id,
                    title=table.get("title", stage_id),
                    percent=percent,
                    hold_s=table.get("hold", 0.0),
                    steps=steps,
                    gates=gates,
                    max_gap_s=max_gap,
                    checkpoint_s=checkpoint,
                    auto_rollback=tuple(
                        x for x in table.get("auto_rollback", []) if isinstance(x, str)
                    ),
                )
            )
    return tuple(stages)


def _steps(
    r: _Reader,
    raw: Any,
    stage_path: tuple,
    probes: dict[str, Probe],
    what: str = "[[stages.steps]]",
) -> tuple[Step, ...]:
    steps: list[Step] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, (*stage_path, "steps"), "step"):
        table = r.table(item, path, _STEP, what=what)
        ok = all([r.require(table, item, path, key, what) for key in ("id", "text")])
        step_id = r.ident(table, path, "step")
        _unique(r, seen, step_id, path, "step")
        probe = table.get("probe")
        if probe is not None and probe not in probes:
            _unknown(r, (*path, "probe"), "probe", probe, probes)
            ok = False
        needs = _ids(r, table["needs"], (*path, "needs"), "needs") if "needs" in table else ()
        if needs and "after" not in table:
            r.problem((*path, "needs"), "needs goes with after (how long they must have held)")
            ok = False
        if ok:
            steps.append(
                Step(
                    id=step_id,
                    text=table["text"],
                    probe=probe,
                    after_s=table.get("after"),
                    needs=needs,
                    note_required=table.get("note_required", False),
                )
            )
    return tuple(steps)


def _gates(
    r: _Reader,
    raw: Any,
    stage_path: tuple,
    queries: dict[str, Query],
    what: str = "[[stages.gates]]",
) -> tuple[Gate, ...]:
    gates: list[Gate] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, (*stage_path, "gates"), "gate"):
        table, check = _comparison(r, item, path, _GATE, what, queries)
        _unique(r, seen, table.get("id"), path, "gate")
        optional = bool(table.get("optional", False))
        query = queries.get(table.get("query", ""))
        if optional and query is not None and not query.needs:
            r.problem(
                (*path, "optional"),
                "optional means: does not count while its query lacks a column it `needs`; "
                f"query {table.get('query')!r} names no `needs`",
                at_value=True,
            )
            continue
        if check is not None:
            gates.append(
                Gate(id=table["id"], check=check, title=table.get("title", ""), optional=optional)
            )
    return tuple(gates)


def _triggers(r: _Reader, raw: Any, queries: dict[str, Query]) -> list[Trigger]:
    triggers: list[Trigger] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, ("triggers",), "trigger"):
        kind = item.get("kind", "query") if isinstance(item, dict) else "query"
        if kind not in TRIGGER_KINDS:
            r.problem(
                (*path, "kind"),
                f"trigger kind {kind!r} is not known; use one of {', '.join(TRIGGER_KINDS)}",
                at_value=True,
            )
            continue
        check: Comparison | None = None
        if kind == "manual":
            # Raised and cleared by people (`cutover raise ID --note`): no query to read.
            table = r.table(item, path, _MANUAL_TRIGGER, what="a manual [[triggers]]")
            ok = r.require(table, item, path, "id", "[[triggers]]")
            r.ident(table, path, "trigger")
        else:
            table, check = _comparison(r, item, path, _TRIGGER, "[[triggers]]", queries)
            ok = check is not None
        _unique(r, seen, table.get("id"), path, "trigger")
        severity = table.get("severity", "critical")
        if severity not in SEVERITIES:
            r.problem(
                (*path, "severity"),
                f"severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                at_value=True,
            )
            continue
        respond = table.get("respond_within")
        if respond is not None and severity != "high":
            r.problem(
                (*path, "respond_within"),
                f"respond_within is the deadline of a high trigger; this one is {severity}",
                at_value=True,
            )
            ok = False
        if ok:
            triggers.append(
                Trigger(
                    id=table["id"],
                    check=check,
                    severity=severity,
                    title=table.get("title", ""),
                    for_s=table.get("for", 0.0),
                    respond_within_s=respond,
                    kind=kind,
                )
            )
    return triggers


def resolve_runbook_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """--runbook, then $CUTOVER_RUNBOOK, then ./runbook.toml (the CLI contract)."""
    if cli_value:
        return Path(cli_value)
    if environ.get("CUTOVER_RUNBOOK"):
        return Path(environ["CUTOVER_RUNBOOK"])
    return Path("runbook.toml")
