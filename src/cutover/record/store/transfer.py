"""Moving a record between the files store and the Postgres store: `cutover store import`
(a file journal with its evidence, snapshots and seen markers into the store, the chain
verified on the way in and again from the store) and `cutover store export` (the store's
record back to files that the files store reads as its own, the journal byte for byte)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from cutover.base.private import FILE_MODE, private_dir
from cutover.record import evidence, snapshots
from cutover.record.chain import Head, parse_line
from cutover.record.journal import Journal, head_path
from cutover.record.store.base import StoreProblem
from cutover.record.store.files import seen_path
from cutover.record.store.pgjournal import line_hash
from cutover.record.store.postgres import PostgresStore, evidence_row

BATCH = 1000  # rows a statement carries: 5,000 events go in five round trips


@dataclass(frozen=True)
class Moved:
    events: int
    evidence: int
    snapshots: int
    seen: int
    skipped: tuple[str, ...] = ()  # what was not moved, and why

    def words(self, verb: str) -> str:
        return (
            f"{verb} {self.events} event{'s' if self.events != 1 else ''}, "
            f"{self.evidence} evidence line{'s' if self.evidence != 1 else ''}, "
            f"{self.snapshots} snapshot{'s' if self.snapshots != 1 else ''} and "
            f"{self.seen} seen marker{'s' if self.seen != 1 else ''}"
        )


def import_files(store: PostgresStore, journal_path: Path) -> Moved:
    """Bring the file journal at `journal_path` (and what lies beside it) into the store.
    Refused when its chain does not verify, or when the store already holds events of this
    cutover (a record is brought in once, whole, never merged)."""
    local = Journal(journal_path, key=store.journal.key)
    check = local.verify()
    if not check.ok:
        raise StoreProblem(
            f"the file journal {journal_path} does not verify ({check.message}): nothing "
            "imported; a broken chain is brought in only once it is understood (`cutover "
            "journal --verify`, then --accept-break)"
        )
    raw = journal_path.read_bytes() if journal_path.exists() else b""
    events = []
    for text in raw.split(b"\n"):
        if not text.strip():
            continue
        parsed = parse_line(text)
        if parsed is None:  # verify passed: only an acknowledged torn line can be here
            continue
        event, _ = parsed
        line = text.decode("utf-8")
        events.append(
            (
                store.cutover,
                event.seq,
                event.ts,
                event.kind,
                event.actor,
                event.host,
                event.hash,
                line,
            )
        )
    skipped: list[str] = []
    ev_rows = _evidence_rows(store, evidence.evidence_path(journal_path), skipped)
    snaps = _snapshot_rows(snapshots.snapshots_dir(journal_path), skipped)
    seen = _seen_rows(seen_path(journal_path))
    t = store.schema

    async def write(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            held = await conn.fetchval(
                f"SELECT count(*) FROM {t}.events WHERE cutover = $1", store.cutover
            )
            if held:
                raise _AlreadyThere(held)
            for start in range(0, len(events), BATCH):
                await conn.executemany(
                    f"INSERT INTO {t}.events (cutover, seq, ts, kind, actor, host, hash, line) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    events[start : start + BATCH],
                )
            for start in range(0, len(ev_rows), BATCH):
                await conn.executemany(
                    f"INSERT INTO {t}.evidence (cutover, run, what, name, stage, verdict, "
                    "first_at, last_at, written_by, line) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    ev_rows[start : start + BATCH],
                )
            await conn.executemany(
                f"INSERT INTO {t}.snapshots (cutover, stage, visit, label, at, body) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                [(store.cutover, *row) for row in snaps],
            )
            await conn.executemany(
                f"INSERT INTO {t}.seen (cutover, who, at) VALUES ($1, $2, $3) "
                "ON CONFLICT (cutover, who) DO UPDATE SET at = greatest(seen.at, EXCLUDED.at)",
                [(store.cutover, who, at) for who, at in seen],
            )
            await store.notify(conn, "event", len(events))

    try:
        store.link.call(write, timeout=120)
    except _AlreadyThere as exc:
        raise StoreProblem(
            f"the store already holds {exc.args[0]} events of cutover {store.cutover}: a "
            "record is imported once, into a cutover that has none (name another with "
            "[store] cutover = …)"
        ) from None
    again = store.journal.verify()
    if not again.ok:  # what went in is not what verifies: say so loudly, never quietly
        raise StoreProblem(f"imported, but the store's chain does not verify: {again.message}")
    return Moved(len(events), len(ev_rows), len(snaps), len(seen), tuple(skipped))


class _AlreadyThere(Exception):
    pass


def _evidence_rows(store: PostgresStore, path: Path, skipped: list[str]) -> list[tuple]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for number, text in enumerate(data.split(b"\n"), 1):
        if not text.strip():
            continue
        try:
            rows.append(evidence_row(store.cutover, text, store.journal.key))
        except (ValueError, KeyError, TypeError, IndexError):
            skipped.append(f"evidence line {number} is not evidence (or not signed): left out")
    return rows


def _snapshot_rows(folder: Path, skipped: list[str]) -> list[tuple]:
    if not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.glob("*.json")):
        raw = path.read_bytes()
        try:
            snap = snapshots.decode(raw)
            body = raw.decode("utf-8")
        except (ValueError, KeyError, TypeError, IndexError):
            skipped.append(f"snapshot {path.name} is unreadable: left out")
            continue
        rows.append((snap.stage, snap.visit, snap.label, snap.at, body))
    return rows


def _seen_rows(path: Path) -> list[tuple[str, datetime]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    if isinstance(data, dict):
        for who, at in data.items():
            try:
                out.append((str(who), datetime.fromisoformat(at)))
            except (TypeError, ValueError):
                continue
    return out


def export_files(store: PostgresStore, journal_path: Path) -> Moved:
    """Write the store's record of this cutover to files at `journal_path` (and beside it),
    as the files store keeps them. Refused when a journal is already there."""
    if journal_path.exists():
        raise StoreProblem(
            f"{journal_path} already exists: export writes a new journal, never over one "
            "(name another with --to)"
        )
    t = store.schema

    async def fetch(conn: asyncpg.Connection) -> tuple:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            ev = await conn.fetch(
                f"SELECT seq, hash, line FROM {t}.events WHERE cutover = $1 ORDER BY seq",
                store.cutover,
            )
            runs = await conn.fetch(
                f"SELECT line FROM {t}.evidence WHERE cutover = $1 ORDER BY id", store.cutover
            )
            snaps = await conn.fetch(
                f"SELECT stage, visit, label, body FROM {t}.snapshots WHERE cutover = $1 "
                "ORDER BY stage, visit, label",
                store.cutover,
            )
            seen = await conn.fetch(
                f"SELECT who, at FROM {t}.seen WHERE cutover = $1 ORDER BY who", store.cutover
            )
        return ev, runs, snaps, seen

    ev, runs, snaps, seen = store.link.call(fetch, timeout=120)
    private_dir(journal_path.parent, tighten=journal_path.parent.name == ".cutover")
    data = b"".join(r["line"].encode("utf-8") + b"\n" for r in ev)
    _write(journal_path, data)
    if ev:
        _write(head_path(journal_path), Head(ev[-1]["seq"], line_hash(ev[-1]), len(data)).encode())
    if runs:
        lines = b"".join(r["line"].encode("utf-8") + b"\n" for r in runs)
        _write(evidence.evidence_path(journal_path), lines)
    if snaps:
        folder = snapshots.snapshots_dir(journal_path)
        private_dir(folder)
        for r in snaps:
            name = f"{r['stage']}.{r['visit']}.{r['label']}.json"
            _write(folder / name, r["body"].encode("utf-8"))
    if seen:
        marks = {r["who"]: r["at"].isoformat() for r in seen}
        _write(seen_path(journal_path), json.dumps(marks).encode("utf-8"))
    return Moved(len(ev), len(runs), len(snaps), len(seen))


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
