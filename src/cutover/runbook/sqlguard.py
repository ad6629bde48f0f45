"""Whether a query only reads: judged on Postgres's own parse tree (libpg_query, via pglast)
and, with a database, on how Postgres declares every function the query calls.

The read-only transaction a query runs in stops it writing through this connection, not
acting elsewhere: dblink opens another connection, pg_terminate_backend ends someone else's
session, pg_notify and advisory locks reach other sessions, set_config outlives the
transaction. So a query here must be one plain read, and what it calls must be a function
Postgres itself declares free of side effects (STABLE or IMMUTABLE).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cutover.runbook.vetted import MEMO

# pglast (libpg_query) is imported when a text has to be parsed: a text vetted on an earlier
# run is known by the memo (vetted.py), and a `check` then never pays for the import.

ALLOWED_FIRST = "SELECT, VALUES or TABLE"

# Functions known to act beyond the query's read-only transaction, refused by name even
# without a database (a trailing * is a prefix). With a database every VOLATILE function is
# refused anyway; this list is what can be said from the text alone.
_ACTS_BEYOND: dict[str, str] = {
    "dblink*": "opens another connection, where the read-only transaction does not hold",
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "reloads the server's configuration",
    "pg_rotate_logfile": "acts on the server",
    "pg_switch_wal": "forces a WAL switch on the server",
    "pg_create_restore_point": "writes to the server's WAL",
    "pg_logical_emit_message": "writes to the server's WAL, outside any transaction",
    "pg_promote": "promotes a standby",
    "pg_create_physical_replication_slot": "creates a replication slot",
    "pg_create_logical_replication_slot": "creates a replication slot",
    "pg_drop_replication_slot": "drops a replication slot",
    "pg_read_file": "reads the server's files",
    "pg_read_binary_file": "reads the server's files",
    "pg_stat_file": "reads the server's files",
    "pg_ls_*": "lists the server's files",
    "pg_file_write": "writes a server file",
    "pg_notify": "signals other sessions",
    "pg_advisory_*": "takes an advisory lock other sessions wait on",
    "pg_try_advisory_*": "takes an advisory lock other sessions wait on",
    "set_config": "changes a setting that can outlive the transaction",
    "setseed": "changes the session's random seed",
    "nextval": "advances a sequence, which no rollback undoes",
    "setval": "sets a sequence, which no rollback undoes",
    "lo_export": "writes a server file",
    "lo_import": "reads a server file into a large object",
    **dict.fromkeys(
        ("lo_create", "lo_creat", "lo_from_bytea", "lo_open", "lo_put", "lowrite"),
        "writes a large object",
    ),
    **dict.fromkeys(("lo_unlink", "lo_truncate", "lo_truncate64"), "changes a large object"),
    "query_to_xml*": "runs SQL text this check cannot read",
    "cursor_to_xml*": "runs SQL text this check cannot read",
}

# VOLATILE functions that may still run. Postgres marks a function VOLATILE when its result
# can change within one statement, which covers both "has side effects" and "reads something
# that moves". These only read something that moves — the wall clock (clock_timestamp,
# timeofday) or a random source (random, random_normal, gen_random_uuid) — and change
# nothing any other session or a later statement can see. pg_sleep only waits, and the
# runbook's statement_timeout bounds the wait; drills use it to make a query slow.
# Only the built-in ones count (schema pg_catalog): a function of the same name elsewhere is
# judged like any other.
ALLOWED_VOLATILE = frozenset(
    {
        "clock_timestamp",
        "timeofday",
        "random",
        "random_normal",
        "gen_random_uuid",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
    }
)

_LOCKING = {
    "LCS_FORKEYSHARE": "FOR KEY SHARE",
    "LCS_FORSHARE": "FOR SHARE",
    "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
    "LCS_FORUPDATE": "FOR UPDATE",
}
_WRITES = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}
_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`?]+")


@dataclass(frozen=True)
class Refusal:
    """Why a query may not run, and where: 0-based characters into its text (None: its start)."""

    reason: str
    offset: int | None = None


@dataclass(frozen=True)
class Call:
    """A function (or operator) a query calls, named as written: ("dblink",), ("public", "f")."""

    name: tuple[str, ...]
    offset: int | None
    operator: bool = False

    @property
    def shown(self) -> str:
        return ".".join(self.name) if not self.operator else f"operator {'.'.join(self.name)}"


@functools.lru_cache(maxsize=256)
def refusal(text: str) -> Refusal | None:
    """None for one plain read calling nothing known to act elsewhere; else why not, where.

    >>> refusal("SELECT count(*) FROM imports WHERE updated_at > now()") is None
    True
    >>> refusal("SELECT 1 FOR UPDATE").reason
    'FOR UPDATE locks rows: a validation query must only read'
    >>> refusal("SELECT dblink_exec('x', 'DELETE FROM t')").offset  # where dblink_exec is
    7
    """
    if _remembered(text) is not None:
        return None  # vetted on an earlier run, under the same rules
    tree, problem = _parse(text)
    if problem is not None:
        return problem
    assert tree is not None
    found = _plain_read(tree, text)
    if found is not None:
        return found
    for call in _calls(tree):
        why = acts_beyond(call.name[-1]) if not call.operator else None
        if why:
            return Refusal(
                f"calls {call.shown}(), which {why}: a validation query must only read",
                call.offset,
            )
    MEMO.keep("sql", text, [[list(c.name), c.offset, c.operator] for c in _sorted_calls(tree)])
    return None


@functools.lru_cache(maxsize=256)
def calls(text: str) -> tuple[Call, ...]:
    """Every function and operator the statement calls, in the order written.

    >>> [c.shown for c in calls("SELECT f(1) + 2 FROM public.g() AS x")]
    ['f', 'operator +', 'public.g']
    """
    kept = _remembered(text)
    if kept is not None:
        return kept
    tree, problem = _parse(text)
    if tree is None or problem is not None:
        return ()
    return _sorted_calls(tree)


def _remembered(text: str) -> tuple[Call, ...] | None:
    """The calls of a text vetted on an earlier run (vetted.py), or None: not remembered, or
    not in the shape keep() writes (then the text is judged as if nothing were remembered)."""
    kept = MEMO.recall("sql", text)
    if not isinstance(kept, list):
        return None
    try:
        return tuple(
            Call(tuple(str(n) for n in name), offset, bool(operator))
            for name, offset, operator in kept
        )
    except (TypeError, ValueError):
        return None


def _sorted_calls(tree: Any) -> tuple[Call, ...]:
    return tuple(sorted(_calls(tree), key=lambda c: -1 if c.offset is None else c.offset))


def acts_beyond(name: str) -> str | None:
    """What a function of this name is known to do beyond the transaction, or None.

    >>> acts_beyond("pg_advisory_xact_lock")
    'takes an advisory lock other sessions wait on'
    >>> acts_beyond("now") is None
    True
    """
    name = name.lower()
    for pattern, why in _ACTS_BEYOND.items():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return why
    return None


# --- with a database --------------------------------------------------------------------

# Every function and operator the query calls, resolved the way Postgres resolves names on
# this connection: a schema-qualified name in its schema, a bare one among the functions
# visible on the search_path (pg_catalog first). All overloads of a name are judged, since
# which one a call picks depends on argument types only the planner knows.
RESOLVE_SQL = """
SELECT c.i::int AS i, n.nspname AS schema, p.proname AS name,
       p.provolatile::text AS volatility
  FROM unnest($1::text[], $2::text[], $3::bool[]) WITH ORDINALITY AS c(schema, name, op, i)
  JOIN pg_proc p ON NOT c.op AND p.proname = c.name
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE CASE WHEN c.schema IS NULL THEN pg_catalog.pg_function_is_visible(p.oid)
            ELSE n.nspname = c.schema END
UNION ALL
SELECT c.i::int, n.nspname, p.proname, p.provolatile::text
  FROM unnest($1::text[], $2::text[], $3::bool[]) WITH ORDINALITY AS c(schema, name, op, i)
  JOIN pg_operator o ON c.op AND o.oprname = c.name
  JOIN pg_namespace opn ON opn.oid = o.oprnamespace
  JOIN pg_proc p ON p.oid = o.oprcode
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE CASE WHEN c.schema IS NULL THEN pg_catalog.pg_operator_is_visible(o.oid)
            ELSE opn.nspname = c.schema END
"""


class Fetches(Protocol):
    """What the check needs of a connection (asyncpg's has it)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


def resolve_args(found: Sequence[Call]) -> tuple[list[str | None], list[str], list[bool]]:
    """The parameters of RESOLVE_SQL for these calls (row i+1 is call i)."""
    schemas = [c.name[-2] if len(c.name) > 1 else None for c in found]
    return schemas, [c.name[-1] for c in found], [c.operator for c in found]


def volatile_refusal(found: Sequence[Call], rows: Sequence[Any]) -> Refusal | None:
    """The first call that resolves to a VOLATILE function outside the allow-list.

    `rows` are RESOLVE_SQL's answer: (i, schema, name, volatility), i 1-based into `found`.
    """
    by_call: dict[int, list[Any]] = {}
    for row in rows:
        by_call.setdefault(int(row[0]) - 1, []).append(row)
    for index, call in enumerate(found):
        for _, schema, name, volatility in by_call.get(index, ()):
            if volatility != "v":
                continue
            if schema == "pg_catalog" and name in ALLOWED_VOLATILE:
                continue
            via = f" (the function behind {call.shown})" if call.operator else ""
            return Refusal(
                f"calls {schema}.{name}(){via}, which Postgres marks VOLATILE: it may write or "
                "act beyond the read-only transaction; a validation query may call only STABLE "
                "or IMMUTABLE functions (and the clock, random() and pg_sleep)",
                call.offset,
            )
    return None


async def check_on(conn: Fetches, text: str) -> Refusal | None:
    """The whole check: the text alone, then every call resolved on this connection."""
    found = refusal(text)
    if found is not None:
        return found
    called = calls(text)
    if not called:
        return None
    rows = await conn.fetch(RESOLVE_SQL, *resolve_args(called))
    return volatile_refusal(called, [tuple(r) for r in rows])


async def check_all_on(conn: Fetches, texts: Sequence[str]) -> dict[str, Refusal | None]:
    """`check_on` for many queries in one round trip: each text's verdict."""
    verdicts: dict[str, Refusal | None] = {}
    pending: list[tuple[str, tuple[Call, ...]]] = []
    for text in texts:
        found = refusal(text)
        called = calls(text) if found is None else ()
        if found is not None or not called:
            verdicts[text] = found
        else:
            pending.append((text, called))
    if pending:
        every = [call for _, called in pending for call in called]
        rows = await conn.fetch(RESOLVE_SQL, *resolve_args(every))
        by_call: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_call.setdefault(int(row[0]), []).append(tuple(row))
        first = 1
        for text, called in pending:
            own = [
                (i - first + 1, *rest)
                for i in range(first, first + len(called))
                for _, *rest in by_call.get(i, ())
            ]
            verdicts[text] = volatile_refusal(called, own)
            first += len(called)
    return verdicts


# --- the parse tree ---------------------------------------------------------------------


# Parsing is the slow part (pglast builds a Python object per node), and the same text is
# judged when the runbook loads and again before it first runs: each text is parsed once.
# The trees are only ever read.
@functools.lru_cache(maxsize=64)
def _parse(text: str) -> tuple[Any, Refusal | None]:
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        statements = parse_sql(text)
    except ParseError as exc:
        message, offset = exc.args[0], exc.args[1] if len(exc.args) > 1 else None
        return None, Refusal(f"not valid SQL: {message}", offset)
    if not statements:
        return None, Refusal("no SQL statement here")
    if len(statements) > 1:
        return None, Refusal(
            "more than one statement: a query here must be exactly one statement",
            statements[1].stmt_location,
        )
    return statements[0].stmt, None


def _plain_read(tree: Any, text: str) -> Refusal | None:
    """One SELECT, VALUES or TABLE that writes nothing, creates nothing and locks nothing."""
    from pglast import ast

    if not isinstance(tree, ast.SelectStmt):
        kind = _WRITES.get(type(tree).__name__) or _first_word(text)
        return Refusal(f"{kind} is not a query: only one read-only {ALLOWED_FIRST} may run here")
    for node in _walk(tree):
        if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
            kind = _WRITES.get(type(node.ctequery).__name__, type(node.ctequery).__name__)
            return Refusal(
                f"WITH {node.ctename} AS ({kind} …) changes the database: "
                "a validation query must only read",
                _offset(node),
            )
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return Refusal(
                "SELECT … INTO creates a table: a validation query must only read",
                _offset(node.intoClause.rel),
            )
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            strength = node.lockingClause[0].strength
            clause = _LOCKING.get(getattr(strength, "name", ""), "FOR UPDATE")
            return Refusal(
                f"{clause} locks rows: a validation query must only read", _locking_at(text)
            )
    return None


def _calls(tree: Any) -> Iterator[Call]:
    from pglast import ast

    for node in _walk(tree):
        if isinstance(node, ast.FuncCall):
            yield Call(_names(node.funcname), _offset(node))
        elif isinstance(node, ast.A_Expr) and node.name:
            name = _names(node.name)
            # BETWEEN, IN and the like carry a word here; only symbols name an operator.
            if name and _OPERATOR.fullmatch(name[-1]):
                yield Call(name, _offset(node), operator=True)


def _walk(node: Any) -> Iterator[Any]:
    """Every node of the tree, parents before children."""
    from pglast import ast

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, tuple | list):
            stack.extend(reversed(current))
        elif isinstance(current, ast.Node):
            yield current
            stack.extend(
                value
                for attr in reversed(type(current).__slots__)
                if isinstance(value := getattr(current, attr, None), ast.Node | tuple | list)
            )


def _names(parts: Any) -> tuple[str, ...]:
    from pglast import ast

    return tuple(p.sval for p in parts or () if isinstance(p, ast.String))


def _offset(node: Any) -> int | None:
    location = getattr(node, "location", None)
    return location if isinstance(location, int) and location >= 0 else None


def _first_word(text: str) -> str:
    match = re.search(r"[A-Za-z_]+", text)
    return match.group().upper() if match else "SQL"


def _locking_at(text: str) -> int | None:
    """Where the first FOR UPDATE/SHARE clause is written (Postgres's own scanner)."""
    from pglast.parser import scan

    tokens = scan(text)
    for token, following in itertools.pairwise(tokens):
        if token.name == "FOR" and following.name in ("UPDATE", "SHARE", "NO", "KEY"):
            return token.start
    return None
