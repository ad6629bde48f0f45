"""Walking the parsed TOML: each table read against its keys, every problem collected with its
file:line:col instead of stopping at the first, so the operator fixes them all in one pass."""

from __future__ import annotations

import difflib
import functools
import math
from pathlib import Path
from typing import Any

from cutover.runbook import tomlpos
from cutover.runbook.durations import parse_duration
from cutover.runbook.keys import ID, Duration, has_type, type_name
from cutover.runbook.problems import Problem


class Reader:
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

    def problem_in_value(self, path: tuple, message: str, offset: int) -> None:
        """A problem `offset` characters into a one-line string value (an expression): the
        column points past the opening quote at the very character."""
        pos = tomlpos.nearest(self.positions, path)
        line = self.text.splitlines()[pos.value_line - 1] if self.text else ""
        quoted = line[pos.value_col - 1 : pos.value_col] in ('"', "'")
        col = pos.value_col + (1 + offset if quoted else 0)
        self.problems.append(Problem(self.shown_as, pos.value_line, col, message))

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
            if not has_type(value, expected):
                self.problem((*path, key), f"{key} must be {type_name(expected)}", at_value=True)
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
        if not ID.match(value):
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


def unknown_key(r: Reader, path: tuple, what: str, name: str, known: dict) -> None:
    hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if hint:
        suggestion = f"; did you mean {hint[0]!r}?"
    elif known:
        suggestion = f"; known: {', '.join(sorted(known))}"
    else:
        suggestion = f"; the runbook defines no {what}"
    r.problem(path, f"unknown {what} {name!r}{suggestion}", at_value=True)
