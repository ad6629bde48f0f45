"""The demo's copy of a runbook: the same stages, gates and queries, with every duration of
time (holds, max_gap, checkpoints, a trigger's `for`, `respond_within` and `escalate.after`,
a step's `after`, a trend's window) scaled from hours to seconds and its own journal,
evidence and snapshots, so a walk-through takes minutes and never touches the real
runbook's. The queries' own windows are not rewritten: the demo's data runs on the same
clock (demo/clock.py), so the SQL stays the shipped SQL, but for the real instant a query
takes ($1: the latest rollback's), read on that clock in a copy of its file; and how often
each query runs is capped, since a 5-minute refresh would sample its hour-long window once
every 300 h."""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from cutover.demo import clock as clock_mod
from cutover.record import journal as journal_mod
from cutover.record.evidence import evidence_path
from cutover.record.snapshots import snapshots_dir
from cutover.runbook import sqlfile
from cutover.runbook.durations import parse_duration

HOLD_SCALE = 3600  # an hour of hold becomes a second: 24 h canary → 24 s
MIN_HOLD_S = 5  # long enough to see the countdown run, short enough not to wait on it
MIN_CHECKPOINT_S = 60  # the runbook's own floor for `checkpoint`
MIN_TREND_S = 600  # the runbook's own floor for a trend's `over`
DEFAULT_MAX_GAP = "1h"
DEFAULT_REFRESH_S = 30.0
TITLE_SUFFIX = " — DEMO (time ÷3600)"  # holds and data alike: an hour is a second
# How often a query runs at most in the demo: its data ages an hour a second, so a query's
# shortest window (the last hour) is a second of it; a real 1–5 min refresh would see the
# world only every 60–300 of its hours.
MAX_REFRESH = "15s"
MARKER = "# Written by `cutover demo` from "
JOURNAL_NAME = "journal.jsonl"
RUNBOOK_NAME = "runbook.toml"
# The values cutover binds to a query's $1, $2…, all real instants (a test holds this to
# keys.QUERY_PARAMS: a new one must say whether the clock reads it).
INSTANT_PARAMS = ("rolled_back_at",)
# What follows `$N` that already says "a timestamptz" (taken into the call, not doubled).
_TIMESTAMPTZ = re.compile(
    r"\s*::\s*(?:timestamptz|timestamp\s+with\s+time\s+zone)(?![\w$])", re.IGNORECASE
)


class NotAnOriginal(ValueError):
    """The runbook given to the demo is itself a demo copy; scaling it again would be wrong."""


def scale_hold(hold: str) -> str:
    """A stage's hold for the demo.

    >>> scale_hold("24h"), scale_hold("48h"), scale_hold("7d"), scale_hold("0s"), scale_hold("1h")
    ('24s', '48s', '168s', '0s', '5s')
    """
    seconds = parse_duration(hold)
    if seconds == 0:
        return "0s"  # "no hold" must stay no hold, not become 5 s
    return f"{max(MIN_HOLD_S, round(seconds / HOLD_SCALE))}s"


def scale_duration(text: str, floor_s: float = MIN_HOLD_S) -> str:
    """Any other duration of time for the demo, scaled as holds are, never below `floor_s`.

    >>> scale_duration("6h"), scale_duration("12h", 60), scale_duration("7d")
    ('6s', '60s', '168s')
    """
    seconds = parse_duration(text)
    if seconds == 0:
        return "0s"
    return f"{max(floor_s, round(seconds / HOLD_SCALE)):g}s"


def _refresh_s(query: Any) -> float:
    try:
        return parse_duration(query["refresh"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_REFRESH_S


def _stage_gates(stage: dict[str, Any], gatesets: dict[str, Any]) -> list[Any]:
    """A stage's own gates and those of the gate sets it uses."""
    gates = list(stage.get("gates", []) if isinstance(stage.get("gates"), list) else [])
    for name in stage.get("use", []) if isinstance(stage.get("use"), list) else []:
        found = gatesets.get(name) if isinstance(name, str) else None
        if isinstance(found, dict) and isinstance(found.get("gates"), list):
            gates += found["gates"]
    return gates


def _max_gap(
    stage: dict[str, Any], queries: dict[str, Any], gatesets: dict[str, Any] | None = None
) -> str:
    """A stage's max_gap for the demo: scaled like its hold, but never shorter than twice the
    slowest refresh of the queries its gates read. Queries keep their real intervals, so a
    shorter gap would restart the hold between two of its own evaluations."""
    slowest = max(
        (
            _refresh_of(queries, gate.get("query"))
            for gate in _stage_gates(stage, gatesets or {})
            if isinstance(gate, dict)
        ),
        default=DEFAULT_REFRESH_S,
    )
    text = stage.get("max_gap")
    scaled = parse_duration(scale_duration(text)) if isinstance(text, str) else 0.0
    default = parse_duration(scale_duration(DEFAULT_MAX_GAP))
    return f"{max(scaled or default, 2 * slowest):g}s"


def _refresh_of(queries: dict[str, Any], name: Any) -> float:
    """A query's refresh; a derived one's is the slowest of what it reads."""
    query = queries.get(name) if isinstance(name, str) else None
    if isinstance(query, dict) and query.get("kind") == "derived":
        sources = query.get("from") if isinstance(query.get("from"), list) else []
        return max((_refresh_s(queries.get(q)) for q in sources), default=DEFAULT_REFRESH_S)
    return _refresh_s(query)


def _scale_where_set(table: dict[str, Any], key: str, floor_s: float = MIN_HOLD_S) -> None:
    if isinstance(table.get(key), str):
        with contextlib.suppress(ValueError):  # the loader says where it is wrong
            table[key] = scale_duration(table[key], floor_s)


def on_the_clock(sql: str) -> str:
    """A query's text with every real instant it takes (a positional parameter in its code,
    not in a comment or a string) read on the world's clock.

    >>> on_the_clock("WHERE t >= coalesce($1::timestamptz, now())")
    'WHERE t >= coalesce(demo_clock.world_time($1::timestamptz), now())'
    >>> on_the_clock("WHERE t >= $2 :: TIMESTAMP WITH TIME ZONE -- $1 is the rollback's")
    "WHERE t >= demo_clock.world_time($2::timestamptz) -- $1 is the rollback's"
    >>> on_the_clock("WHERE t::date >= $1::date AND s = '$1'")
    "WHERE t::date >= demo_clock.world_time($1::timestamptz)::date AND s = '$1'"
    """
    out, done = [], 0
    tokens = sqlfile.tokenize(sql)
    for dollar, number in itertools.pairwise(tokens):
        text = sql[number.start : number.end]
        is_param = sql[dollar.start : dollar.end] == "$" and number.start == dollar.end
        if not (is_param and number.kind == sqlfile.NUMBER and text.isdigit()):
            continue
        end = number.end
        if cast := _TIMESTAMPTZ.match(sql, end):
            end = cast.end()
        out += [sql[done : dollar.start], f"{clock_mod.SCHEMA}.world_time(${text}::timestamptz)"]
        done = end
    return "".join(out) + sql[done:]


def takes_an_instant(sql: str) -> bool:
    """Whether a query's code (not its comments) has a parameter for the clock to read."""
    return on_the_clock(sql) != sql


def _read_on_the_clock(query: dict[str, Any], demo_dir: Path, written: dict[Path, Path]) -> None:
    """Point a query that takes a real instant (a $1 in its code) at a copy of its file that
    reads it on the demo's clock (demo/clock.py); every other query keeps the original.
    Written on every start from the original as it is then, so an edit shows in the next
    demo; two originals of one name get a copy each."""
    original = Path(query["file"])
    try:
        text = original.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # the loader says what is wrong with it
    if not takes_an_instant(text):
        return
    if original not in written:
        taken = {path.name for path in written.values()}
        name, n = original.name, 1
        while name in taken:
            n += 1
            name = f"{original.stem}-{n}{original.suffix}"
        target = demo_dir / "queries" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            f"-- Written by `cutover demo` from {original}: the instant it takes ($1) is read\n"
            "-- on the demo's clock, as its data is. Edit the original, not this file.\n\n"
            + on_the_clock(text),
            "utf-8",
        )
        written[original] = target
    query["file"] = str(written[original])


def demo_runbook(
    data: dict[str, Any],
    source: Path,
    demo_dir: Path,
    clock: float | None = None,
    store: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The demo version of a parsed runbook (a new dict; `data` is left alone). With
    `clock`, the world's data runs on the demo's clock, and so do the instants queries take.
    Its record is files beside the copy, or the `[store]` table given (`demo --team`)."""
    copy: dict[str, Any] = tomllib.loads(tomli_w.dumps(data))  # a deep copy of plain TOML data
    folder = source.resolve().parent
    copy["title"] = str(copy.get("title", source.stem)) + TITLE_SUFFIX
    # Never the original's store: a demo of a team-mode runbook must not write its walk
    # into the team's real record.
    copy["store"] = dict(store) if store else {"kind": "files"}
    # Relative to the copy's folder (the demo dir), so moving the dir moves the journal too.
    copy.setdefault("journal", {})["path"] = JOURNAL_NAME
    for query in copy.get("queries", {}).values():
        if isinstance(query, dict) and isinstance(query.get("file"), str):
            # The copy lives elsewhere; its queries must still be the original .sql files,
            # so an edit to a query shows in the next demo without regenerating anything.
            query["file"] = str((folder / query["file"]).resolve())
    flag = copy.get("flag")
    if isinstance(flag, dict) and flag.get("kind") == "file":
        # A demo must never move a real flag file: give it one of its own.
        flag["path"] = str((demo_dir / "flag-percent").resolve())
    queries = copy.get("queries", {}) if isinstance(copy.get("queries"), dict) else {}
    written: dict[Path, Path] = {}
    for query in queries.values():
        derived = not isinstance(query, dict) or query.get("kind") == "derived"
        if not derived and _refresh_s(query) > parse_duration(MAX_REFRESH):
            query["refresh"] = MAX_REFRESH
        if clock and not derived and isinstance(query.get("file"), str):
            _read_on_the_clock(query, demo_dir, written)
    gatesets = copy.get("gatesets", {}) if isinstance(copy.get("gatesets"), dict) else {}
    for stage in copy.get("stages", []):
        if not isinstance(stage, dict):
            continue
        if isinstance(stage.get("hold"), str):
            stage["hold"] = scale_hold(stage["hold"])
        # A malformed duration stays as written: the loader says where it is wrong.
        with contextlib.suppress(ValueError):
            stage["max_gap"] = _max_gap(stage, queries, gatesets)
        _scale_where_set(stage, "checkpoint", MIN_CHECKPOINT_S)
        for step in stage.get("steps", []):
            if isinstance(step, dict):
                _scale_where_set(step, "after")
    for trigger in copy.get("triggers", []):
        if isinstance(trigger, dict):
            _scale_where_set(trigger, "for")
            _scale_where_set(trigger, "respond_within")
            if isinstance(trigger.get("escalate"), dict):
                _scale_where_set(trigger["escalate"], "after")
    gates = [g for s in copy.get("stages", []) if isinstance(s, dict) for g in s.get("gates", [])]
    gates += [g for gs in gatesets.values() if isinstance(gs, dict) for g in gs.get("gates", [])]
    for check in [*gates, *copy.get("triggers", [])]:
        if isinstance(check, dict) and isinstance(check.get("trend"), dict):
            _scale_where_set(check["trend"], "over", MIN_TREND_S)
    return copy


def write_demo_runbook(
    source: Path | str,
    demo_dir: Path | str,
    *,
    keep: bool = False,
    clock: float | None = None,
    store: dict[str, str] | None = None,
) -> Path:
    """Write `<demo_dir>/runbook.toml` from `source` and return its path. Unless `keep`, the
    demo journal starts empty (its action lock file stays: it is never deleted by design)."""
    source, demo_dir = Path(source), Path(demo_dir)
    text = source.read_text(encoding="utf-8")
    if text.startswith(MARKER):
        raise NotAnOriginal(
            f"{source} is a demo copy (written by `cutover demo`); give the demo the original "
            "runbook with --runbook PATH"
        )
    data = tomllib.loads(text)
    demo_dir.mkdir(parents=True, exist_ok=True)
    target = demo_dir / RUNBOOK_NAME
    header = (
        f"{MARKER}{source.resolve()}.\n"
        "# Regenerated on every start: edit the original, not this file.\n\n"
    )
    copy = demo_runbook(data, source, demo_dir, clock, store)
    target.write_text(header + tomli_w.dumps(copy), "utf-8")
    if not keep:
        journal = demo_dir / JOURNAL_NAME
        journal_mod.remove(journal)  # with its head record
        # The last demo's verdicts and snapshots belong to the last demo's journal.
        evidence_path(journal).unlink(missing_ok=True)
        shutil.rmtree(snapshots_dir(journal), ignore_errors=True)
    return target
