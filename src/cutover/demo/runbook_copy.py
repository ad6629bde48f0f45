"""The demo's copy of a runbook: the same stages, gates and queries, with holds scaled from
hours to seconds and its own journal, so a walk-through takes minutes and never touches the
real runbook's journal."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from cutover import journal as journal_mod
from cutover.durations import parse_duration

HOLD_SCALE = 3600  # an hour of hold becomes a second: 24 h canary → 24 s
MIN_HOLD_S = 5  # long enough to see the countdown run, short enough not to wait on it
TITLE_SUFFIX = " — DEMO (holds ÷3600)"
MARKER = "# Written by `cutover demo` from "
JOURNAL_NAME = "journal.jsonl"
RUNBOOK_NAME = "runbook.toml"


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


def demo_runbook(data: dict[str, Any], source: Path, demo_dir: Path) -> dict[str, Any]:
    """The demo version of a parsed runbook (a new dict; `data` is left alone)."""
    copy: dict[str, Any] = tomllib.loads(tomli_w.dumps(data))  # a deep copy of plain TOML data
    folder = source.resolve().parent
    copy["title"] = str(copy.get("title", source.stem)) + TITLE_SUFFIX
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
    for stage in copy.get("stages", []):
        if isinstance(stage, dict) and isinstance(stage.get("hold"), str):
            stage["hold"] = scale_hold(stage["hold"])
    return copy


def write_demo_runbook(source: Path | str, demo_dir: Path | str, *, keep: bool = False) -> Path:
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
    target.write_text(header + tomli_w.dumps(demo_runbook(data, source, demo_dir)), "utf-8")
    if not keep:
        journal_mod.remove(demo_dir / JOURNAL_NAME)  # with its head record
    return target
