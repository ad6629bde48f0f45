"""Loading [store]: where the record lives (files beside the journal, or a Postgres schema the
whole team shares), with the environment variable naming its DSN (never the DSN itself)."""

from __future__ import annotations

import re
from typing import Any

from cutover.runbook.keys import ENV_NAME, STORE, STORE_KINDS
from cutover.runbook.model import Database, StateStore
from cutover.runbook.reader import Reader

# A schema name used unquoted in SQL: what `CREATE SCHEMA cutover` takes as it is written.
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CUTOVER_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


def cutover_id(title: str) -> str:
    """A cutover's default id in the store: its title as lowercase words joined by `-`.

    >>> cutover_id("soulprint: v1 → v2 full-pass pipeline")
    'soulprint-v1-v2-full-pass-pipeline'
    """
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)[:100].strip("-") or "cutover"


def read_store(r: Reader, raw: Any, database: Database, title: str) -> StateStore:
    path = ("store",)
    table = r.table(raw, path, STORE, what="[store]")
    kind = table.get("kind", "files")
    if kind not in STORE_KINDS:
        r.problem(
            (*path, "kind"),
            f'store kind {kind!r} is not known; use "files" (the record beside the journal) '
            'or "postgres" (team mode: the record in a Postgres schema)',
            at_value=True,
        )
        kind = "files"
    if kind == "files":
        for key in ("dsn_env", "schema"):
            if key in table:
                r.problem(
                    (*path, key),
                    f'{key} applies to kind = "postgres" only; with "files" the record lives '
                    "beside the journal ([journal] path)",
                )
    dsn_env = table.get("dsn_env", StateStore.dsn_env)
    if "dsn_env" in table and not ENV_NAME.match(dsn_env):
        r.problem(
            (*path, "dsn_env"),
            f"dsn_env names an environment variable (like CUTOVER_STATE_URL), not {dsn_env!r}: "
            "the DSN itself never goes in the runbook",
            at_value=True,
        )
    elif kind == "postgres" and dsn_env == database.dsn_env:
        r.problem(
            (*path, "dsn_env"),
            f"the store needs a writable role of its own: dsn_env must not be {dsn_env}, the "
            "read-only role the validation queries run as ([database] dsn_env)",
            at_value=True,
        )
    schema = table.get("schema", StateStore.schema)
    if not SCHEMA_NAME.match(schema):
        r.problem(
            (*path, "schema"),
            f"schema must be a plain lowercase name (letters, digits, _; like "
            f'"cutover"), not {schema!r}',
            at_value=True,
        )
    cutover = table.get("cutover") or cutover_id(title)
    if "cutover" in table and not CUTOVER_ID.match(cutover):
        r.problem(
            (*path, "cutover"),
            f"cutover must be lowercase letters, digits, and . _ - (like "
            f'"soulprint-v2"), not {cutover!r}',
            at_value=True,
        )
    return StateStore(kind=kind, dsn_env=dsn_env, schema=schema, cutover=cutover)
