"""Who holds the move lock, as parts (user, host, pid, since, doing what), for a line the
console keeps on screen while another process moves traffic. On Postgres, from the row the
holder keeps, shown only while pg_locks says its backend holds the advisory lock (a holder
killed -9 is gone at once); on files, from the name the holder writes into the lock file,
shown only while the kernel lists a lock on that file (a crash leaves the name, not a lock).

Read without taking anything: a console asks every second, and even a shared lock held for
a moment would make another process's advance, taken in that moment, fail as busy."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROC_LOCKS = Path("/proc/locks")


@dataclass(frozen=True)
class Mover:
    actor: str
    host: str
    pid: int
    what: str
    since: datetime | None  # None: the holder wrote a time that does not read as one

    def mine(self) -> bool:
        """Held by this very process (the console's own move), which its header says."""
        return self.pid == os.getpid() and self.host == socket.gethostname()


def move_holder(store: Any) -> Mover | None:
    """The move lock's holder now, or None (free, or a store kind that cannot say). Raises
    what the store raises when it cannot be read (StoreUnavailable is an OSError)."""
    if store.kind == "postgres":
        return _on_postgres(store)
    if store.kind == "files":
        return _in_file(Path(store.journal.lock_path))
    return None


def _on_postgres(store: Any) -> Mover | None:
    from cutover.record.store import pgschema

    key = pgschema.lock_key(store.schema, store.cutover, "move")
    t = store.schema

    async def fetch(conn: Any) -> Any:
        return await conn.fetchrow(
            f"SELECT l.actor, l.host, l.pid, l.what, l.since FROM {t}.locks l "
            "JOIN pg_locks p ON p.pid = l.backend AND p.locktype = 'advisory' "
            "AND p.granted AND p.classid = $2 AND p.objid = $3 "
            "WHERE l.cutover = $1 AND l.name = 'move'",
            store.cutover,
            pgschema.LOCK_SPACE,
            key,
        )

    row = store.link.call(fetch)
    if row is None:
        return None
    return Mover(row["actor"], row["host"], int(row["pid"]), row["what"], row["since"])


def _in_file(path: Path) -> Mover | None:
    try:
        raw = path.read_bytes()[: 64 * 1024]
    except OSError:
        return None  # no lock file yet: nobody has ever moved
    if not raw.strip():
        return None  # freed: the holder empties it as it lets go
    try:
        held = json.loads(raw)
        mover = Mover(
            str(held["actor"]), str(held["host"]), int(held["pid"]), str(held["what"]), None
        )
        since = held.get("since")
    except (ValueError, KeyError, TypeError, OverflowError):  # OverflowError: a pid of Infinity
        return None  # between a holder's lock and its write: named at the next look
    if not _locked(path, mover):
        return None
    try:
        # In UTC here: a time the console cannot turn to UTC (year 1 at +14:00) is no time.
        at = datetime.fromisoformat(since)
        return Mover(mover.actor, mover.host, mover.pid, mover.what, at.astimezone(UTC))
    except (TypeError, ValueError, OverflowError):
        return mover


def _locked(path: Path, mover: Mover) -> bool:
    """Is the file locked now? The kernel's list of locks says (Linux); elsewhere, whether
    the process it names is alive (the files store is one host's: its pid is ours to ask)."""
    try:
        inode = path.stat().st_ino
        text = PROC_LOCKS.read_text()
    except OSError:
        return _alive(mover.pid)
    for line in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF"; a waiter's: "1: -> FLOCK …"
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].endswith(f":{inode}"):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True
