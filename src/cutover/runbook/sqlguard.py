"""Whether a query only reads: judged on Postgres's own parse tree (libpg_query, via pglast;
see `sqltree`) and, with a database, on how Postgres declares every function the query can
reach: those it calls by name, the functions behind its operators, those attribute notation
calls (k.f is f(k)), the cast functions and domain CHECK constraints its casts run, and what
each of those reaches in turn (default arguments, an aggregate's steps, a SQL-standard body,
the implicit casts into a function's parameters).

The read-only transaction a query runs in stops it writing through this connection, not
acting elsewhere: dblink opens another connection, pg_terminate_backend ends someone else's
session, pg_notify and advisory locks reach other sessions, set_config outlives the
transaction. So a query here must be one plain read, and what it calls must be a function
Postgres itself declares free of side effects (STABLE or IMMUTABLE).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from cutover.runbook import sqltree
from cutover.runbook.sqltree import ATTRIBUTE, CAST, FUNCTION, KINDS, OPERATOR, Call, Refusal
from cutover.runbook.sqltree import parse as _parse
from cutover.runbook.vetted import MEMO

# pglast (libpg_query) is imported when a text has to be parsed: a text vetted on an earlier
# run is known by the memo (vetted.py), and a `check` then never pays for the import.

# Functions known to act beyond the query's read-only transaction, refused by name even
# without a database (a trailing * is a prefix). With a database every VOLATILE function is
# refused anyway; this list is what can be said from the text alone, and what Postgres
# declares STABLE although it acts (txid_current).
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
    **dict.fromkeys(
        ("txid_current", "pg_current_xact_id"),
        "assigns the transaction an ID, a write the read-only transaction does not stop "
        "(pg_current_snapshot() reads the current one without taking one)",
    ),
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
    found = sqltree.plain_read(tree, text)
    if found is not None:
        return found
    called = sqltree.calls_in(tree, text)
    for call in called:
        why = acts_beyond(call.name[-1]) if call.kind == FUNCTION else None
        if why:
            return Refusal(
                f"calls {call.shown}(), which {why}: a validation query must only read",
                call.offset,
            )
    entry = [[c.kind, list(c.name), c.offset, c.source] for c in called]
    MEMO.keep("sql", text, {"calls": entry, "limit": sqltree.limit_at(tree, text)})
    return None


@functools.lru_cache(maxsize=256)
def calls(text: str) -> tuple[Call, ...]:
    """Every function and operator the statement calls, in the order written (and the names
    attribute notation may call, and the types it casts to).

    >>> [c.shown for c in calls("SELECT f(1) + 2 FROM public.g() AS x")]
    ['f', 'operator +', 'public.g']
    >>> [c.shown for c in calls("SELECT k.f, '1'::int FROM k")]
    ['attribute notation .f', 'the cast to pg_catalog.int4']
    """
    kept = _remembered(text)
    if kept is not None:
        return kept[0]
    tree, problem = _parse(text)
    if tree is None or problem is not None:
        return ()
    return sqltree.calls_in(tree, text)


@functools.lru_cache(maxsize=256)
def limited(text: str) -> int | None:
    """Where the statement's own LIMIT or FETCH FIRST is written (0-based characters into
    the text), or None when it has none: it then returns every row it finds. A LIMIT inside
    a subquery, a CTE or one parenthesized arm of a UNION is not the statement's, and
    LIMIT ALL limits nothing.

    >>> limited("SELECT id FROM t ORDER BY id LIMIT 10")
    29
    >>> limited("SELECT 1 UNION SELECT 2 FETCH FIRST 1 ROW ONLY")
    24
    >>> limited("SELECT id FROM t") is None
    True
    >>> limited("(SELECT 1 LIMIT 1) UNION SELECT 2") is None
    True
    >>> limited("SELECT * FROM (SELECT id FROM t LIMIT 5) s") is None
    True
    >>> limited("SELECT id FROM t LIMIT ALL") is None
    True
    """
    kept = _remembered(text)
    if kept is not None:
        return kept[1]
    tree, _ = _parse(text)
    if tree is None:
        return None
    return sqltree.limit_at(tree, text)


def _remembered(text: str) -> tuple[tuple[Call, ...], int | None] | None:
    """The calls and LIMIT of a text vetted on an earlier run (vetted.py), or None: not
    remembered, or not in the shape refusal() keeps (then the text is judged as if nothing
    were remembered)."""
    kept = MEMO.recall("sql", text)
    if not isinstance(kept, dict) or not isinstance(kept.get("calls"), list):
        return None
    limit = kept.get("limit")
    if limit is not None and type(limit) is not int:
        return None
    found = []
    for entry in kept["calls"]:
        if not isinstance(entry, list) or len(entry) != 4:
            return None
        kind, name, offset, source = entry
        if (
            kind not in KINDS
            or not isinstance(name, list)
            or not name
            or not all(isinstance(n, str) for n in name)
            or (offset is not None and type(offset) is not int)
            or (source is not None and not isinstance(source, str))
        ):
            return None
        found.append(Call(tuple(name), offset, kind, source))
    return tuple(found), limit


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

# Every function a query can reach, found the way Postgres resolves names on this
# connection: a schema-qualified name in its schema, a bare one among those visible on the
# search_path (pg_catalog first). All overloads of a name are judged, and every cast into a
# type (from the literal's type when the text shows one), since which one runs depends on
# types only the planner knows. Then, recursively, what each reaches: a function's
# dependencies (default arguments, aggregate steps, a SQL-standard body), the domains it
# takes and the implicit casts into its parameter types; a type's parts (a domain's base,
# an array's elements, a row's columns), the cast functions into it and what its domain
# CHECK constraints call. Only the VOLATILE ones come back, with the step that reached
# them; i is the row of the arrays that asked (from 1).
RESOLVE_SQL = """
WITH RECURSIVE
c(kind, schema, name, source, i) AS (
  SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]),
                           pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))
                WITH ORDINALITY
),
-- The implicit casts through a VOLATILE function (as good as always none).
implicit(casttarget, castfunc, via) AS MATERIALIZED (
  SELECT k.casttarget, k.castfunc,
         'an implicit cast from ' || k.castsource::regtype::text || ' to '
         || k.casttarget::regtype::text
    FROM pg_catalog.pg_cast k
    JOIN pg_catalog.pg_proc f ON f.oid = k.castfunc
   WHERE k.castcontext = 'i' AND f.provolatile = 'v'
),
reach(i, kind, oid, source, via) AS (
  -- A function called by name, or by attribute notation (callable with one argument that
  -- may be a row: of a row type, a domain, record or a polymorphic type).
  SELECT c.i, 'p', p.oid, NULL::text, NULL::text
    FROM c
    JOIN pg_catalog.pg_proc p ON p.proname = c.name
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    LEFT JOIN pg_catalog.pg_type t ON t.oid = p.proargtypes[0]
   WHERE c.kind IN ('f', 'a')
     AND CASE WHEN c.schema IS NULL THEN pg_catalog.pg_function_is_visible(p.oid)
              ELSE n.nspname = c.schema END
     AND (c.kind = 'f' OR p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1
          AND (t.typtype IN ('c', 'd') OR t.oid = ANY ('{record,anyelement,anynonarray,'
               'anycompatible,anycompatiblenonarray,"\\"any\\""}'::regtype[])))
  UNION
  -- The function behind an operator.
  SELECT c.i, 'p', o.oprcode::oid, NULL, NULL
    FROM c
    JOIN pg_catalog.pg_operator o ON o.oprname = c.name
    JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
   WHERE c.kind = 'o'
     -- pg_catalog's operators are taken whether visible or not: = alone has ~100 there,
     -- and asking each whether it is visible was half this query's time. Taking one that a
     -- search_path shadows only adds a function to those checked, never leaves one out.
     AND CASE WHEN c.schema IS NULL
              THEN o.oprnamespace = 'pg_catalog'::regnamespace
                   OR pg_catalog.pg_operator_is_visible(o.oid)
              ELSE n.nspname = c.schema END
  UNION
  -- A type a cast names (and its array type), or one a function name may be: d(x) casts x
  -- to the domain d, though never through a cast function.
  SELECT c.i, 't', x.oid, CASE WHEN c.kind = 'f' THEN '' ELSE c.source END, NULL
    FROM c
    JOIN pg_catalog.pg_type t ON t.typname = c.name
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    CROSS JOIN LATERAL (VALUES (t.oid), (t.typarray)) AS x(oid)
   WHERE c.kind IN ('c', 'f') AND x.oid <> 0
     AND CASE WHEN c.schema IS NULL THEN pg_catalog.pg_type_is_visible(t.oid)
              ELSE n.nspname = c.schema END
  UNION
  SELECT r.i, x.kind, x.oid, x.source, x.via
    FROM reach r
    CROSS JOIN LATERAL (
      -- What a function calls beyond its own code: its default arguments, an aggregate's
      -- step and final functions, a SQL-standard body; and the domains it takes (an
      -- argument is checked on the way in).
      SELECT CASE WHEN d.refclassid = 'pg_catalog.pg_proc'::regclass THEN 'p' ELSE 't' END,
             d.refobjid, NULL::text, 'reached through ' || r.oid::regprocedure::text
        FROM pg_catalog.pg_depend d
        LEFT JOIN pg_catalog.pg_type t
               ON d.refclassid = 'pg_catalog.pg_type'::regclass AND t.oid = d.refobjid
       WHERE r.kind = 'p' AND d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = r.oid
         AND d.deptype = 'n'
         AND (d.refclassid = 'pg_catalog.pg_proc'::regclass OR t.typtype = 'd')
      UNION ALL
      -- The implicit casts into a function's parameter types, which Postgres applies to an
      -- argument of another type without a word in the text.
      SELECT 'p', k.castfunc, NULL, k.via
        FROM pg_catalog.pg_proc p
        JOIN implicit k ON k.casttarget = ANY (p.proargtypes)
       WHERE r.kind = 'p' AND p.oid = r.oid
      UNION ALL
      -- A type's parts: a domain's base type, an array's elements, a row's columns.
      SELECT 't', part.oid, r.source, r.via
        FROM pg_catalog.pg_type t
        CROSS JOIN LATERAL (
          SELECT t.typbasetype WHERE t.typtype = 'd'
          UNION ALL SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1
          UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                     WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                       AND a.attnum > 0 AND NOT a.attisdropped
        ) AS part(oid)
       WHERE r.kind = 't' AND t.oid = r.oid
      UNION ALL
      -- The cast functions into a type (from the type the text shows, when it shows one).
      SELECT 'p', k.castfunc, NULL, 'the cast from ' || k.castsource::regtype::text
                                    || ' to ' || k.casttarget::regtype::text
        FROM pg_catalog.pg_cast k
       WHERE r.kind = 't' AND k.casttarget = r.oid AND k.castfunc <> 0
         AND (r.source IS NULL
              OR k.castsource = ANY (pg_catalog.string_to_array(r.source, ',')::regtype[]))
      UNION ALL
      -- What a domain's CHECK constraints call (and the domains they cast to).
      SELECT CASE WHEN d.refclassid = 'pg_catalog.pg_type'::regclass THEN 't' ELSE 'p' END,
             coalesce(o.oprcode::oid, d.refobjid), NULL,
             'a CHECK constraint of domain ' || r.oid::regtype::text
        FROM pg_catalog.pg_constraint k
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::regclass
                                   AND d.objid = k.oid AND d.deptype = 'n'
        LEFT JOIN pg_catalog.pg_operator o
               ON d.refclassid = 'pg_catalog.pg_operator'::regclass AND o.oid = d.refobjid
       WHERE r.kind = 't' AND k.contypid = r.oid
         AND d.refclassid IN ('pg_catalog.pg_proc'::regclass,
                              'pg_catalog.pg_operator'::regclass, 'pg_catalog.pg_type'::regclass)
    ) AS x(kind, oid, source, via)
)
SELECT r.i::int AS i, n.nspname AS schema, p.proname AS name,
       p.provolatile::text AS volatility, r.via
  FROM reach r
  JOIN pg_catalog.pg_proc p ON r.kind = 'p' AND p.oid = r.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE p.provolatile = 'v'
"""


class Fetches(Protocol):
    """What the check needs of a connection (asyncpg's has it)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


Key = tuple[str, str | None, str, str | None]  # what RESOLVE_SQL is asked of a call


def asked(call: Call) -> Key:
    """What RESOLVE_SQL is asked of a call: kind (f, o, a, c), schema, name, source type.
    Calls with the same key reach the same functions, so each key is asked once."""
    qualified = len(call.name) > 1 and call.kind != ATTRIBUTE
    return call.kind[0], call.name[-2] if qualified else None, call.name[-1], call.source


async def reached_on(conn: Fetches, called: Iterable[Call]) -> dict[Key, list[tuple[Any, ...]]]:
    """The VOLATILE functions each call's key reaches: (schema, name, volatility, via) rows,
    via None for the function the call names itself. One round trip."""
    keys = list(dict.fromkeys(asked(c) for c in called))
    if not keys:
        return {}
    rows = await conn.fetch(RESOLVE_SQL, *([k[n] for k in keys] for n in range(4)))
    reached: dict[Key, list[tuple[Any, ...]]] = {}
    for row in rows:
        reached.setdefault(keys[int(row[0]) - 1], []).append(tuple(row)[1:])
    return reached


def volatile_refusal(
    found: Sequence[Call], reached: Mapping[Key, Sequence[tuple[Any, ...]]]
) -> Refusal | None:
    """The first call that reaches a VOLATILE function outside the allow-list, given what
    each call's key reaches (reached_on)."""
    for call in found:
        rows = sorted(reached.get(asked(call), ()), key=lambda r: (r[3] is not None, r[:2]))
        for schema, name, volatility, via in rows:
            if volatility != "v":
                continue
            if schema == "pg_catalog" and name in ALLOWED_VOLATILE:
                continue
            return Refusal(
                f"calls {schema}.{name}(){_how(call, via)}, which Postgres marks VOLATILE: it "
                "may write or act beyond the read-only transaction; a validation query may call "
                "only STABLE or IMMUTABLE functions (and the clock, random() and pg_sleep)",
                call.offset,
            )
    return None


def _how(call: Call, via: str | None) -> str:
    """How the query reaches the function, when it does not name it: " (…)"."""
    how = []
    if call.kind == OPERATOR:
        how.append(f"the function behind {call.shown}")
    elif call.kind == ATTRIBUTE:
        how.append(f"called through {call.shown}")
    elif call.kind == CAST and not (via or "").startswith("the cast from"):
        how.append(call.shown)
    if via:
        how.append(via)
    return f" ({': '.join(how)})" if how else ""


async def check_on(conn: Fetches, text: str) -> Refusal | None:
    """The whole check: the text alone, then every call resolved on this connection."""
    return (await check_all_on(conn, [text]))[text]


async def check_all_on(conn: Fetches, texts: Sequence[str]) -> dict[str, Refusal | None]:
    """`check_on` for many queries in one round trip: each text's verdict."""
    verdicts: dict[str, Refusal | None] = {}
    pending: dict[str, tuple[Call, ...]] = {}
    for text in texts:
        verdicts[text] = refusal(text)
        if verdicts[text] is None and calls(text):
            pending[text] = calls(text)
    if pending:
        reached = await reached_on(conn, (c for called in pending.values() for c in called))
        for text, called in pending.items():
            verdicts[text] = volatile_refusal(called, reached)
    return verdicts
