"""Loading what the runbook talks to: [database], [flag], [probes.*] and [[notify]], with the
environment variables they name (never their values) and their URL and header templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutover.runbook.keys import (
    DATABASE,
    ENV_NAME,
    FLAG_BY_KIND,
    FLAG_COMMON,
    FLAG_KINDS,
    HEADER_NAME,
    ID,
    MAX_STATEMENT_TIMEOUT_S,
    MIN_STATEMENT_TIMEOUT_S,
    NOTIFY,
    OBSERVED,
    PROBE,
    ROLLBACK_WAYS,
)
from cutover.runbook.model import Database, Flag, Notify, Observed, Probe, Query
from cutover.runbook.reader import Reader, unknown_key
from cutover.runbook.templates import template_problem


def read_notify(r: Reader, raw: Any) -> tuple[Notify, ...]:
    out: list[Notify] = []
    for path, item in r.items(raw, ("notify",), "notify"):
        table = r.table(item, path, NOTIFY, what="[[notify]]")
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


def read_database(r: Reader, raw: Any) -> Database:
    table = r.table(raw, ("database",), DATABASE, what="[database]")
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


def read_flag(r: Reader, raw: Any, folder: Path, queries: dict[str, Query]) -> Flag | None:
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
        raw, path, {**FLAG_COMMON, **FLAG_BY_KIND[kind]}, what=f"[flag] of kind {kind!r}"
    )
    required = {"vercel": ("project", "key"), "file": ("path",), "command": ("get", "set")}
    for key in required[kind]:
        r.require(table, raw, path, key, f"[flag] of kind {kind!r}")
    if kind == "command" and "set" in table and "{percent}" not in table["set"]:
        r.problem((*path, "set"), "the set command must contain {percent}", at_value=True)
    rollback = table.get("rollback", "instant") if kind == "vercel" else "instant"
    if rollback not in ROLLBACK_WAYS:
        r.problem(
            (*path, "rollback"),
            f'rollback must be "instant" (re-point production at a deployment known to carry '
            f'the target) or "redeploy" (set the variable and build), not {rollback!r}',
            at_value=True,
        )
        rollback = "instant"
    if kind == "command" and not str(table.get("rollback", "x")).strip():
        r.problem((*path, "rollback"), "the rollback command is empty", at_value=True)
    token_file = None
    if kind == "vercel" and "token_file" in table:
        if table["token_file"].strip():
            token_file = folder / Path(table["token_file"].strip()).expanduser()
        else:
            r.problem((*path, "token_file"), "token_file is empty: name a file", at_value=True)
    observed = None
    if "observed" in table:
        obs = r.table(table["observed"], (*path, "observed"), OBSERVED, what="flag.observed")
        for key in ("query", "column"):
            r.require(obs, table["observed"], (*path, "observed"), key, "flag.observed")
        if "query" in obs and obs["query"] not in queries:
            unknown_key(r, (*path, "observed", "query"), "query", obs["query"], queries)
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
        rollback=rollback,
        token_file=token_file,
        path=(folder / table["path"]) if "path" in table else None,
        get=table.get("get", ""),
        set=table.get("set", ""),
        timeout_s=table.get("timeout", 30.0),
        rollback_command=table.get("rollback", "") if kind == "command" else "",
        env=read_flag_env(r, table.get("env", []), (*path, "env")),
        observed=observed,
    )


def read_flag_env(r: Reader, names: list, path: tuple) -> tuple[str, ...]:
    """[flag] env: the names of the variables a command flag's commands are given."""
    good = []
    for i, item in enumerate(names):
        if isinstance(item, str) and ENV_NAME.match(item):
            good.append(item)
        else:
            r.problem(
                (*path, i),
                f'[flag] env holds environment variable names like "KUBECONFIG"; {item!r} '
                "is not one",
                at_value=True,
            )
    return tuple(dict.fromkeys(good))


def read_probes(r: Reader, raw: dict) -> dict[str, Probe]:
    probes: dict[str, Probe] = {}
    for probe_id, item in raw.items():
        path = ("probes", probe_id)
        table = r.table(item, path, PROBE, what=f"[probes.{probe_id}]")
        if not r.require(table, item, path, "url", f"[probes.{probe_id}]"):
            continue
        if not ID.match(probe_id):
            r.problem(path, f"probe id {probe_id!r} must be lower-case letters, digits, _ or -")
        check_template(r, table["url"], (*path, "url"))
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
            headers=read_headers(r, table.get("headers", {}), (*path, "headers")),
        )
    return probes


def check_template(r: Reader, text: str, path: tuple) -> None:
    """A URL or header template whose ${…} references cannot be expanded is a problem now,
    not a failed request every refresh."""
    problem = template_problem(text)
    if problem:
        r.problem(path, problem, at_value=True)


def read_headers(r: Reader, raw: dict, path: tuple) -> dict[str, str]:
    """Request headers whose values come from the environment: a variable's name (its value
    is the header's) or a template ("Bearer ${RENDER_API_KEY}"). A literal value would be a
    secret written in the runbook, and a `:-default` would be one too."""
    good: dict[str, str] = {}
    for name, value in raw.items():
        where = (*path, name)
        if not HEADER_NAME.match(name):
            r.problem(where, f"{name!r} is not an HTTP header name")
            continue
        if not isinstance(value, str):
            r.problem(where, f"header {name} must be a string", at_value=True)
            continue
        if ENV_NAME.match(value):
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
