"""The expressions of a derived query's columns (`"100 * v2_rows.n / (v2_rows.n + v1.calls)"`):
numbers, `query.column` names, + - * /, parentheses, min and max. Parsed by hand into a tree
when the runbook loads (a mistake is a problem at its file:line:col) and evaluated over the
latest results; never Python's eval. NULL in, or a division by zero, is NULL out: a gate on
it waits rather than judge a number nobody measured."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

from cutover.base.finite import not_a_number
from cutover.runbook.frozen import frozen

FUNCTIONS = ("min", "max")

# A query id may hold '-' (`[a-z0-9][a-z0-9_-]*`): a name is read greedily and counts as a
# name only when its query is one the derived query reads; otherwise the text is read again
# as a number and operators ("2-x.n" is 2 minus x.n unless a query "2-x" is read).
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExpressionError(ValueError):
    """A mistake in an expression, `offset` characters into its text."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


# A tree: ("num", value) | ("ref", query, column) | ("neg", node) | (op, left, right) for
# + - * / | ("call", "min" | "max", (node, …)).
Node = tuple[Any, ...]


@frozen
class Expression:
    text: str
    tree: Node

    @property
    def names(self) -> tuple[tuple[str, str], ...]:
        """Every (query, column) it reads, in order, each once.

        >>> parse("min(a.x, b.y) / a.x", {"a", "b"}).names
        (('a', 'x'), ('b', 'y'))
        """
        found: dict[tuple[str, str], None] = {}

        def walk(node: Node) -> None:
            if node[0] == "ref":
                found[(node[1], node[2])] = None
            elif node[0] == "neg":
                walk(node[1])
            elif node[0] == "call":
                for arg in node[2]:
                    walk(arg)
            elif node[0] != "num":
                walk(node[1])
                walk(node[2])

        walk(self.tree)
        return tuple(found)


def _tokens(text: str, queries: Collection[str]) -> list[tuple[str, Any, int]]:
    """(kind, value, offset): kinds num, ref, name (a function), and the operators."""
    out: list[tuple[str, Any, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        name = _NAME.match(text, i)
        unknown = None
        if name:
            query, column = name.group().split(".", 1)
            if query in queries:
                out.append(("ref", (query, column), i))
                i = name.end()
                continue
            known = ", ".join(sorted(queries)) or "none"
            unknown = ExpressionError(
                f"{name.group()!r} names query {query!r}, which is not in `from` ({known})", i
            )
            if "-" not in query:
                raise unknown
            # "2-x.n" or "a-b.n": read again, the '-' as a minus.
        number = _NUMBER.match(text, i)
        if number:
            out.append(("num", float(number.group().replace("_", "")), i))
            i = number.end()
            continue
        word = _WORD.match(text, i)
        if word:
            if word.group() in FUNCTIONS:
                out.append(("name", word.group(), i))
                i = word.end()
                continue
            raise unknown or ExpressionError(
                f"{word.group()!r} is not a query.column name, a number, min or max", i
            )
        if ch in "+-*/(),":
            out.append((ch, ch, i))
            i += 1
            continue
        raise ExpressionError(f"{ch!r} cannot be read here: use numbers, + - * / ( ) min max", i)
    out.append(("end", None, len(text)))
    return out


def parse(text: str, queries: Collection[str]) -> Expression:
    """The expression's tree; ExpressionError (with where) for anything else.

    >>> parse("100 * a.n / (a.n + b.count)", {"a", "b"}).tree[0]
    '/'
    >>> parse("a.n a.m", {"a"})
    Traceback (most recent call last):
    ...
    cutover.runbook.expressions.ExpressionError: 'a.m' cannot follow here: an operator is missing?
    """
    tokens = _tokens(text, queries)
    at = 0

    def peek() -> tuple[str, Any, int]:
        return tokens[at]

    def take() -> tuple[str, Any, int]:
        nonlocal at
        token = tokens[at]
        at += 1
        return token

    def expect(kind: str, what: str) -> None:
        token = take()
        if token[0] != kind:
            raise ExpressionError(f"expected {what} here", token[2])

    def expression() -> Node:
        node = term()
        while peek()[0] in ("+", "-"):
            op = take()[0]
            node = (op, node, term())
        return node

    def term() -> Node:
        node = unary()
        while peek()[0] in ("*", "/"):
            op = take()[0]
            node = (op, node, unary())
        return node

    def unary() -> Node:
        if peek()[0] == "-":
            take()
            return ("neg", unary())
        if peek()[0] == "+":
            take()
            return unary()
        return atom()

    def atom() -> Node:
        kind, value, offset = take()
        if kind == "num":
            return ("num", value)
        if kind == "ref":
            return ("ref", *value)
        if kind == "(":
            node = expression()
            expect(")", "a closing )")
            return node
        if kind == "name":
            expect("(", f"( after {value}")
            args = [expression()]
            while peek()[0] == ",":
                take()
                args.append(expression())
            expect(")", f"a closing ) of {value}(…)")
            if len(args) < 2:
                raise ExpressionError(f"{value}(…) takes two or more values", offset)
            return ("call", value, tuple(args))
        if kind == "end":
            raise ExpressionError(
                "the expression ends where a number or a query.column is expected", offset
            )
        raise ExpressionError(
            f"{_at(text, offset)!r} where a number or a query.column is expected", offset
        )

    if peek()[0] == "end":
        raise ExpressionError("the expression is empty", 0)
    tree = expression()
    kind, _, offset = peek()
    if kind != "end":
        raise ExpressionError(
            f"{_at(text, offset)!r} cannot follow here: an operator is missing?", offset
        )
    return Expression(text, tree)


def _at(text: str, offset: int) -> str:
    """The word at `offset`, to name it in a message."""
    rest = text[offset:].split()
    return rest[0][:30] if rest else ""


class Unreadable(ValueError):
    """A value the expression reads is not a number (or is missing): the result says so."""


def evaluate(expression: Expression, read: Callable[[str, str], Any]) -> float | None:
    """The value, with `read(query, column)` giving each cell; None for NULL (a NULL read,
    a division by zero, or a result that is not finite). Unreadable when a cell is text.

    >>> e = parse("100 * a.v2 / (a.v2 + max(a.v1, b.calls))", {"a", "b"})
    >>> cells = {("a", "v2"): 18, ("a", "v1"): 0, ("b", "calls"): 162}
    >>> evaluate(e, lambda q, c: cells[(q, c)])
    10.0
    >>> evaluate(e, lambda q, c: 0)   # 0 / 0: nothing to divide by
    >>> evaluate(parse("a.x + 1", {"a"}), lambda q, c: None) is None
    True
    """

    def value(node: Node) -> float | None:
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "ref":
            return _number(node[1], node[2], read(node[1], node[2]))
        if kind == "neg":
            inner = value(node[1])
            return None if inner is None else -inner
        if kind == "call":
            args = [value(arg) for arg in node[2]]
            if any(a is None for a in args):
                return None
            return min(args) if node[1] == "min" else max(args)  # type: ignore[type-var]
        left, right = value(node[1]), value(node[2])
        if left is None or right is None:
            return None
        if kind == "+":
            return left + right
        if kind == "-":
            return left - right
        if kind == "*":
            return left * right
        return None if right == 0 else left / right

    result = value(expression.tree)
    return result if result is not None and math.isfinite(result) else None


def _number(query: str, column: str, cell: Any) -> float | None:
    if cell is None:
        return None
    # JSON true reads as 1, as a gate on it does (`processors_available == 1`).
    if isinstance(cell, bool):
        return 1.0 if cell else 0.0
    if isinstance(cell, int | float | Decimal):
        number = float(cell)
        return number if not math.isnan(number) else None
    raise Unreadable(f"{query}.{column} is {not_a_number(cell, width=40)}")
