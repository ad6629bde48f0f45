"""The parse-tree half of the SQL guard (`sqlguard`): what Postgres's own parser (libpg_query,
via pglast) says a statement is, locks, calls and limits. Pure: no database, no memo.

pglast is imported inside the functions, only when a text has to be parsed (a text the memo
already vetted never gets here).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Iterator
from typing import Any

from cutover.runbook.frozen import frozen

ALLOWED_FIRST = "SELECT, VALUES or TABLE"

# How a statement can reach a function (Call.kind).
FUNCTION, OPERATOR, ATTRIBUTE, CAST = "function", "operator", "attribute", "cast"
KINDS = (FUNCTION, OPERATOR, ATTRIBUTE, CAST)

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
# Postgres rewrites x BETWEEN a AND b into comparisons, each operator looked up by name.
_BETWEEN = {
    "AEXPR_BETWEEN": (">=", "<="),
    "AEXPR_BETWEEN_SYM": (">=", "<="),
    "AEXPR_NOT_BETWEEN": ("<", ">"),
    "AEXPR_NOT_BETWEEN_SYM": ("<", ">"),
}
# The type a literal has before a cast converts it (make_const in Postgres): a string or a
# NULL is "unknown", which the target type's input reads with no cast function at all.
_LITERAL = {
    "String": "",
    "Integer": "int4",
    "Float": "int8,numeric",
    "Boolean": "bool",
    "BitString": "bit",
}


@frozen
class Refusal:
    """Why a query may not run, and where: 0-based characters into its text (None: its start)."""

    reason: str
    offset: int | None = None


@frozen
class Call:
    """Something a statement calls, named as written: a function ("dblink",), ("public", "f");
    an operator; a name after a dot, which Postgres may read as a function of the row before
    it (attribute notation: k.f is f(k)); or a type a value is cast to (its cast functions,
    and a domain's CHECK constraints, run)."""

    name: tuple[str, ...]
    offset: int | None
    kind: str = FUNCTION
    # A cast's input type when the text alone says ("int4"; several comma-separated; "" for
    # a string or NULL, which no cast function converts); None when only the database knows.
    source: str | None = None

    @property
    def shown(self) -> str:
        written = ".".join(self.name)
        if self.kind == OPERATOR:
            return f"operator {written}"
        if self.kind == ATTRIBUTE:
            return f"attribute notation .{written}"
        if self.kind == CAST:
            return f"the cast to {written}"
        return written


# Parsing is the slow part (pglast builds a Python object per node), and the same text is
# judged when the runbook loads and again before it first runs: each text is parsed once.
# The trees are only ever read.
@functools.lru_cache(maxsize=64)
def parse(text: str) -> tuple[Any, Refusal | None]:
    """The statement's tree, or why there is none to judge."""
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


def plain_read(tree: Any, text: str) -> Refusal | None:
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


def calls_in(tree: Any, text: str) -> tuple[Call, ...]:
    """Everything the statement calls, in the order written."""
    found = _calls(tree, _Tokens(text))
    return tuple(sorted(found, key=lambda c: -1 if c.offset is None else c.offset))


def limit_at(tree: Any, text: str) -> int | None:
    """Where the statement's own LIMIT or FETCH FIRST is written, or None (LIMIT ALL, a
    LIMIT of a subquery, a CTE or one arm of a UNION are not the statement's)."""
    from pglast import ast

    if not isinstance(tree, ast.SelectStmt) or tree.limitCount is None:
        return None
    if isinstance(tree.limitCount, ast.A_Const) and tree.limitCount.isnull:
        return None  # LIMIT ALL, LIMIT NULL: every row
    # The tree holds no position for the keyword: of the LIMIT and FETCH words, the
    # statement's is the one least deep in parentheses (any other is in a subquery's).
    depth, best = 0, None
    for token in _Tokens(text).all:
        if token.name == "ASCII_40":
            depth += 1
        elif token.name == "ASCII_41":
            depth -= 1
        elif token.name in ("LIMIT", "FETCH") and (best is None or depth < best[0]):
            best = (depth, token.start)
    return best[1] if best is not None else None


def _calls(tree: Any, tokens: _Tokens) -> Iterator[Call]:
    from pglast import ast

    cast_types: set[int] = set()
    for node in _walk(tree):
        if isinstance(node, ast.FuncCall):
            yield Call(_names(node.funcname), _offset(node))
        elif isinstance(node, ast.A_Expr) and node.name:
            name = _names(node.name)
            kind = getattr(node.kind, "name", "")
            for symbol in _BETWEEN.get(kind, ()):
                yield Call((symbol,), _offset(node), OPERATOR)
            # IN, LIKE and the like carry a symbol here too; BETWEEN a word (above).
            if name and _OPERATOR.fullmatch(name[-1]):
                yield Call(name, _offset(node), OPERATOR)
        elif isinstance(node, ast.SubLink) and getattr(node.subLinkType, "name", "") in (
            "ANY_SUBLINK",
            "ALL_SUBLINK",
            "ROWCOMPARE_SUBLINK",
        ):
            yield Call(_names(node.operName) or ("=",), _offset(node), OPERATOR)  # IN (SELECT …)
        elif isinstance(node, ast.SortBy) and node.useOp:
            yield Call(_names(node.useOp), _offset(node), OPERATOR)  # ORDER BY x USING op
        elif isinstance(node, ast.CaseExpr) and node.arg is not None:
            yield Call(("=",), _offset(node), OPERATOR)  # CASE x WHEN y compares with =
        elif isinstance(node, ast.JoinExpr) and (node.usingClause or node.isNatural):
            yield Call(("=",), _offset(node.rarg), OPERATOR)  # JOIN … USING, NATURAL JOIN
        elif isinstance(node, ast.TypeCast) and node.typeName is not None:
            cast_types.add(id(node.typeName))
            source = None
            if isinstance(node.arg, ast.A_Const):
                source = "" if node.arg.isnull else _LITERAL.get(type(node.arg.val).__name__)
            at = _offset(node.typeName)
            at = _offset(node) if at is None else at
            yield Call(_names(node.typeName.names), at, CAST, source)
        elif isinstance(node, ast.TypeName) and id(node) not in cast_types and node.names:
            # A type named anywhere else (a column definition list, RETURNING of JSON_VALUE,
            # JSON_TABLE's columns) is a type values are coerced into, from what only the
            # database knows.
            yield Call(_names(node.names), _offset(node), CAST)
        elif isinstance(node, ast.ColumnRef) and len(node.fields) > 1:
            # k.f (and s.k.f, k.col.f) may be f(k): every name after the first may be one.
            at = _offset(node)
            for index, field in enumerate(node.fields[1:], 1):
                if isinstance(field, ast.String):
                    yield Call((field.sval,), tokens.field_at(at, index), ATTRIBUTE)
        elif isinstance(node, ast.A_Indirection):
            at = _offset(node.arg)
            for field in node.indirection or ():
                if isinstance(field, ast.String):  # (x).f may be f(x)
                    at = tokens.name_after(at, field.sval)
                    yield Call((field.sval,), at, ATTRIBUTE)


class _Tokens:
    """Postgres's own scanner over the text, run when a position is first asked of it."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def all(self) -> list[Any]:
        from pglast.parser import scan

        return list(scan(self.text))

    @functools.cached_property
    def _starts(self) -> list[int]:
        return [t.start for t in self.all]

    def field_at(self, start: int | None, index: int) -> int | None:
        """Where the index-th name of a dotted name written at `start` is (else `start`)."""
        if start is None:
            return None
        first = bisect.bisect_left(self._starts, start)
        at = first + 2 * index
        dotted = at < len(self.all) and self._starts[first : first + 1] == [start]
        if dotted and all(self.all[at - 2 * k + 1].name == "ASCII_46" for k in range(1, index + 1)):
            return self.all[at].start
        return start

    def name_after(self, start: int | None, name: str) -> int | None:
        """Where `.name` is first written after `start` (else `start`)."""
        first = bisect.bisect_left(self._starts, start or 0)
        for dot, token in itertools.pairwise(self.all[first:]):
            written = self.text[token.start : token.end + 1]
            if dot.name == "ASCII_46" and _identifier(written) == name:
                return token.start
        return start


def _identifier(written: str) -> str:
    if written.startswith('"') and written.endswith('"') and len(written) > 1:
        return written[1:-1].replace('""', '"')
    return written.lower()


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
    for token, following in itertools.pairwise(_Tokens(text).all):
        if token.name == "FOR" and following.name in ("UPDATE", "SHARE", "NO", "KEY"):
            return token.start
    return None
