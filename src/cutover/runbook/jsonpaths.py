"""JSONPaths (RFC 9535) in the runbook's http queries, judged when the runbook loads: a path
that cannot compile is a problem at its file:line:col, not a query that fails at 3 a.m."""

from __future__ import annotations

import functools
import re

from cutover.runbook.vetted import MEMO

# The everyday shapes of a JSONPath, recognised without the library: importing it builds two
# lexers (~60 ms quiet, 110-160 ms on a busy machine) on every first run after a runbook
# edit, for paths like "$.values[-1].value". Everything here is a strict subset of RFC 9535
# that the library compiles (tests/test_jsonpaths.py checks that on generated paths); any
# other path, valid or not, goes to the library, which says what is wrong with it.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_LETTER_FIRST = r"[A-Za-z][A-Za-z0-9_]*"  # after "..", the library refuses a leading _
_INT = r"(?:0|-?[1-9][0-9]{0,14})"
# Printable ASCII without the quote or a backslash: no escapes to get right.
_STR = r"""(?:'[\x20-\x26\x28-\x5b\x5d-\x7e]*'|"[\x20\x21\x23-\x5b\x5d-\x7e]*")"""
# No exponents: the library refuses some valid ones ("0e-9").
_NUM = r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?"
_LITERAL = rf"(?:{_NUM}|{_STR}|true|false|null)"
_SINGULAR = rf"[@$](?:\.{_NAME}|\[ ?(?:{_STR}|{_INT}) ?\])*"
_COMPARABLE = rf"(?:{_LITERAL}|{_SINGULAR})"
_FILTER = rf"\? ?(?:{_COMPARABLE} ?(?:==|!=|<=|>=|<|>) ?{_COMPARABLE}|{_SINGULAR})"
# No slices: the library refuses some valid ones ("$[0,:]").
_SELECTOR = rf"(?:{_STR}|{_INT}|\*|{_FILTER})"
_BRACKETS = rf"\[ ?{_SELECTOR}(?: ?, ?{_SELECTOR})* ?\]"
_SEGMENT = rf"(?:\.(?:{_NAME}|\*)|\.\.(?:{_LETTER_FIRST}|\*)|(?:\.\.)?{_BRACKETS})"
PLAIN_SOURCE = rf"\$(?:{_SEGMENT})*"
PLAIN_MAX = 200  # longer paths go to the library (and no pattern runs long)


@functools.cache
def plain() -> re.Pattern[str]:
    """The everyday shapes, compiled when a path is not in the memo (3-6 ms to compile: not
    paid by a run whose paths are all remembered)."""
    return re.compile(PLAIN_SOURCE)


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
        return None  # judged on an earlier run, by the same rules
    if len(path) <= PLAIN_MAX and plain().fullmatch(path):
        MEMO.keep("jsonpath", path, True)
        return None  # an everyday shape: valid without asking the library
    import jsonpath

    try:
        jsonpath.compile(path)
    except jsonpath.JSONPathError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not a JSONPath ({first})"
    MEMO.keep("jsonpath", path, True)
    return None
