"""Where a rollback's records go when the journal cannot be written (a full disk, an immutable
file, a folder gone read-only): a rollback must go ahead all the same. Its intent and outcome
are spilled to the first place that takes them (a file beside the journal, else this user's
state folder, else only the terminal), and folded into the journal, chained and marked as
recovered, by the first command that can write it again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover.base.private import FILE_MODE, private_dir
from cutover.record.journal import Event, Journal, iso_utc


@dataclass(frozen=True)
class Spilled:
    """One record that did not reach the journal, and where it went instead (None: nowhere
    on disk; the caller shows `line` on the terminal so it is not lost)."""

    kind: str
    fields: dict[str, Any]
    at: datetime
    where: Path | None
    line: str
    why: str  # what stopped the journal

    def said(self) -> str:
        place = str(self.where) if self.where else "nowhere on disk (this line is the record)"
        return (
            f"the journal cannot be written ({self.why}): {self.kind} kept in {place}; it is "
            "folded into the journal once the journal can be written"
        )


def spill_paths(journal_path: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Beside the journal first, then this user's state folder (named by the journal's path,
    so two cutovers never share a spill)."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    tag = hashlib.sha256(str(journal_path.resolve()).encode()).hexdigest()[:12]
    return [
        journal_path.with_name(journal_path.name + ".spill"),
        Path(base) / "cutover" / f"spill-{tag}.jsonl",
    ]


def spill(
    journal: Journal, kind: str, fields: Mapping[str, Any], why: str, now: datetime | None = None
) -> Spilled:
    """Write one record where it can go. Never raises for the disk: the record's line is
    returned for the terminal whatever happens."""
    at = now or datetime.now(UTC)
    record = {
        "spill_id": os.urandom(6).hex(),
        "ts": iso_utc(at),
        "actor": journal.actor,
        "host": journal.host,
        "kind": str(kind),
        "fields": dict(fields),
    }
    line = json.dumps(record, ensure_ascii=False, default=str)
    redact = journal.redactor
    if redact is not None:
        line = redact(line)
    for path in spill_paths(journal.path):
        try:
            private_dir(path.parent, tighten=path.parent.name in (".cutover", "cutover"))
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                os.write(fd, line.encode("utf-8") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            continue
        return Spilled(str(kind), dict(fields), at, path, line, why)
    return Spilled(str(kind), dict(fields), at, None, line, why)


def fold(journal: Journal) -> list[Event]:
    """Append every spilled record to the journal (oldest first, each once: a record whose
    spill_id is already journaled is not appended again), then remove the spill. Returns
    the events appended; an OSError means the journal still cannot be written (the spill
    stays for the next try)."""
    pending: list[tuple[Path, list[dict[str, Any]]]] = []
    for path in spill_paths(journal.path):
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        records = []
        for text in raw.splitlines():
            try:
                obj = json.loads(text)
            except ValueError:
                continue  # a torn last line: the rest still counts
            if isinstance(obj, dict) and isinstance(obj.get("fields"), dict):
                records.append(obj)
        pending.append((path, records))
    if not pending:
        return []
    done = {e.get("spill_id") for e in journal.read().events if e.get("spill_id")}
    records = sorted((r for _, rs in pending for r in rs), key=lambda r: str(r.get("ts")))
    appended = []
    for record in records:
        if record.get("spill_id") in done:
            continue
        fields = {
            k: v
            for k, v in record["fields"].items()
            if k not in ("seq", "ts", "actor", "host", "kind", "prev", "hash")
        }
        event = journal.append(
            str(record.get("kind")),
            **fields,
            recovered=True,
            spill_id=record.get("spill_id"),
            spilled_at=record.get("ts"),
            spilled_by=record.get("actor"),
        )
        appended.append(event)
    for path, _ in pending:
        path.unlink(missing_ok=True)
    return appended
