"""Every column the runbook reads of a query (a gate's, a trigger's, the flag's observed
share), checked against the columns the query returns, at the runbook's file:line:col."""

from __future__ import annotations

from collections.abc import Mapping

from cutover.base.inert import inert
from cutover.runbook import tomlpos
from cutover.runbook.frozen import frozen
from cutover.runbook.model import Comparison, Runbook
from cutover.runbook.problems import Problem

_KEYS = ("column", "successes", "trials")
_LISTED = 30  # columns named in a message; a wide query says how many more


@frozen
class ColumnUse:
    """One column named in the runbook: which query must return it, and where it is named."""

    query: str
    column: str
    key: str  # the runbook key that names it: column, successes, trials, row, against.row…
    path: tomlpos.Path  # the key's place in the runbook
    what: str  # "gate 'success' of stage 'canary'", for the message


def uses(runbook: Runbook) -> list[ColumnUse]:
    """Every column the runbook reads, in runbook order, each place once (a gate set's gate
    is written once however many stages use it).

    The loader refuses a runbook with any bad stage, gate or trigger, so the triggers' tuple
    lines up with the file's array; a gate knows where it is written (`Gate.where`)."""
    found: list[ColumnUse] = []
    observed = runbook.flag.observed
    if observed is not None:
        path = ("flag", "observed", "column")
        found.append(ColumnUse(observed.query, observed.column, "column", path, "flag.observed"))
    seen: set[tuple] = set()
    for i, stage in enumerate(runbook.stages):
        for j, gate in enumerate(stage.gates):
            where = gate.where or ("stages", i, "gates", j)
            if where in seen:
                continue
            seen.add(where)
            what = (
                f"gate {gate.id!r} of gate set {where[1]!r}"
                if where[0] == "gatesets"
                else f"gate {gate.id!r} of stage {stage.id!r}"
            )
            found += _of(gate.check, where, what)
    for k, trigger in enumerate(runbook.triggers):
        if trigger.check is not None:  # a manual trigger reads no query
            found += _of(trigger.check, ("triggers", k), f"trigger {trigger.id!r}")
    return found


def _of(check: Comparison | None, path: tomlpos.Path, what: str) -> list[ColumnUse]:
    if check is None:  # a manual trigger reads nothing
        return []
    found = [
        ColumnUse(check.query, getattr(check, key), key, (*path, key), what)
        for key in _KEYS
        if getattr(check, key) is not None
    ]
    # The columns a row selection matches on: a missing one would leave the gate waiting
    # on "no such column" at run time.
    if isinstance(check.row, tuple):
        found += [ColumnUse(check.query, c, "row", (*path, "row", c), what) for c, _ in check.row]
    against = check.against.row if check.against else None
    if isinstance(against, tuple):
        where = (*path, "against", "row")
        found += [ColumnUse(check.query, c, "against.row", (*where, c), what) for c, _ in against]
    if check.distribution is not None:
        for key in ("bucket", "count"):
            name = getattr(check.distribution, key)
            where = (*path, "distribution", key)
            found.append(ColumnUse(check.query, name, f"distribution.{key}", where, what))
    if check.new_rows is not None:
        where = (*path, "new_rows", "key")
        found.append(ColumnUse(check.query, check.new_rows.key, "new_rows.key", where, what))
    return found


def missing(
    runbook: Runbook,
    returned: Mapping[str, tuple[str, ...]],
    *,
    shown_as: str,
    text: str,
) -> list[Problem]:
    """A problem for each named column its query does not return (queries absent from
    `returned` could not be prepared and are not judged). `text` is the runbook's text."""
    positions = tomlpos.key_positions(text)
    problems = []
    for use in uses(runbook):
        columns = returned.get(use.query)
        if columns is None or use.column in columns:
            continue
        pos = tomlpos.nearest(positions, use.path)
        problems.append(
            Problem(
                shown_as,
                pos.value_line,
                pos.value_col,
                f"{use.what} reads {use.key} {inert(use.column)!r}, but query {use.query!r} "
                f"returns no such column (it returns {_listed(columns)})",
            )
        )
    return problems


def _listed(columns: tuple[str, ...]) -> str:
    """
    >>> _listed(()), _listed(("a", "b"))
    ('no columns', 'a, b')
    """
    if not columns:
        return "no columns"
    shown = ", ".join(inert(c, max_len=64) for c in columns[:_LISTED])
    more = len(columns) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown
