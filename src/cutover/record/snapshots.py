"""Snapshots: every query's result at a stage's entry, at its exit and at each checkpoint
(`checkpoint = "12h"`, the runbook's "every 12 hours, 4 checkpoints"), kept beside the
journal for the report and for comparisons against a baseline. One JSON file per snapshot,
written whole (temp file, fsync, rename), 0600; a second writer of the same snapshot
(console and watcher both noticing a checkpoint) finds it there and leaves it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cutover.base.private import FILE_MODE, private_dir
from cutover.runbook.frozen import frozen
from cutover.sources.results import QueryResult

ENTRY, EXIT = "entry", "exit"


def snapshots_dir(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.stem + ".snapshots")


def checkpoint_label(index: int) -> str:
    return f"checkpoint-{index}"


def due_checkpoints(entered_at: datetime, now: datetime, every_s: float | None) -> list[str]:
    """The checkpoint labels that have come due since the stage was entered.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> due_checkpoints(t, t + timedelta(hours=25), 12 * 3600)
    ['checkpoint-1', 'checkpoint-2']
    >>> due_checkpoints(t, t + timedelta(hours=1), None)
    []
    """
    if not every_s or every_s <= 0:
        return []
    count = int((now - entered_at).total_seconds() // every_s)
    return [checkpoint_label(i) for i in range(1, count + 1)]


@frozen
class Snapshot:
    stage: str
    visit: int
    label: str
    at: datetime | None
    results: dict[str, QueryResult]
    # Why the file cannot be read (truncated, edited): a damaged snapshot is no baseline,
    # and no other visit's stands in for it.
    damaged: str | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON: kept as text, never lost
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _name(stage: str, visit: int, label: str) -> str:
    return f"{stage}.{visit}.{label}.json"


def take(
    folder: Path,
    stage: str,
    visit: int,
    label: str,
    results: Mapping[str, QueryResult],
    at: datetime,
) -> Path | None:
    """Write one snapshot unless it exists; returns its path when written."""
    private_dir(folder)
    path = folder / _name(stage, visit, label)
    if path.exists():
        return None
    data = encode(stage, visit, label, results, at)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link, not rename: whoever is second finds the first's snapshot and keeps it.
        os.link(tmp, path)
    except FileExistsError:
        return None
    finally:
        os.unlink(tmp)
    return path


def encode(
    stage: str, visit: int, label: str, results: Mapping[str, QueryResult], at: datetime
) -> bytes:
    """One snapshot as the bytes of its file (what the Postgres store keeps as they are)."""
    body = {
        "stage": stage,
        "visit": visit,
        "label": label,
        "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "queries": {
            qid: {
                "columns": list(r.columns),
                "rows": [[_plain(v) for v in row] for row in r.rows],
                "ran_at": r.ran_at.isoformat() if r.ran_at else None,
                "error": r.error,
                "truncated": r.truncated,
            }
            for qid, r in results.items()
        },
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


def load(path: Path) -> Snapshot:
    return decode(path.read_bytes())


def decode(raw: bytes) -> Snapshot:
    body = json.loads(raw.decode("utf-8"))
    results = {}
    for qid, q in body["queries"].items():
        ran = datetime.fromisoformat(q["ran_at"]) if q.get("ran_at") else None
        results[qid] = QueryResult(
            qid,
            tuple(q["columns"]),
            tuple(tuple(row) for row in q["rows"]),
            ran,
            None,
            q.get("error"),
            truncated=bool(q.get("truncated")),
        )
    return Snapshot(
        body["stage"],
        int(body["visit"]),
        body["label"],
        datetime.fromisoformat(body["at"]),
        results,
    )


def latest(folder: Path, stage: str, label: str = EXIT) -> Snapshot | None:
    """The snapshot of the newest visit of `stage` with `label` (a baseline: that stage's
    exit). When that file cannot be read it says so (`damaged`): an older visit's is never
    taken in its place, which once let gates PASS silently against a stale baseline."""
    if not folder.is_dir():
        return None
    visits = []
    for path in folder.glob(f"{stage}.*.{label}.json"):
        middle = path.name[len(stage) + 1 : -len(f".{label}.json")]
        if middle.isdigit():
            visits.append((int(middle), path))
    if not visits:
        return None
    visit, path = max(visits)
    try:
        return load(path)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        what = "truncated" if isinstance(exc, json.JSONDecodeError) else "unreadable"
        return Snapshot(stage, visit, label, None, {}, damaged=f"{path.name} is {what}")


def taken(folder: Path, stage: str, visit: int) -> set[str]:
    """The labels already snapshotted for this visit of a stage."""
    if not folder.is_dir():
        return set()
    prefix = f"{stage}.{visit}."
    return {p.name[len(prefix) : -len(".json")] for p in folder.glob(f"{prefix}*.json")}
