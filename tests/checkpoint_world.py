"""A files cutover whose journal holds every kind of event replay folds (and one it does not
know, a crash's torn line, an accepted break), for the checkpoint's tests (#20)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover.judge.session import Session
from cutover.record import checkpoint, state, statecodec
from cutover.record.journal import Journal
from cutover.runbook import loader

BOOK = """\
version = 1
title = "Checkpoints: v1 → v2"

[flag]
kind = "file"
path = "flag"

[queries.ok]
file = "ok.sql"

[[stages]]
id = "off"
percent = 0

  [[stages.steps]]
  id = "looked"
  text = "Someone looked"

[[stages]]
id = "canary"
percent = 10
hold = "0s"

[[stages]]
id = "full"
percent = 100
hold = "0s"
"""

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def write_book(folder: Path, book: str = BOOK) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flag").write_text("0\n")
    (folder / "ok.sql").write_text("SELECT 1 AS ok;\n")
    path = folder / "runbook.toml"
    path.write_text(book)
    return path


def env(key: str | None = None) -> dict[str, str]:
    out = {"USER": "ana", "PATH": os.environ.get("PATH", "")}
    if key:
        out["CUTOVER_JOURNAL_KEY"] = key
    return out


def session(book: Path, key: str | None = None) -> Session:
    return Session(loader.load(book), env(key))


def journal_path(book: Path) -> Path:
    return loader.load(book).journal_path


def checkpoint_file(book: Path) -> Path:
    return checkpoint.checkpoint_path(journal_path(book))


def clock():
    tick = [0]

    def now() -> datetime:
        tick[0] += 1
        return T0 + timedelta(minutes=tick[0])

    return now


def iso(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def deployment(uid: str, percent: int) -> dict:
    return {
        "deployment": uid,
        "percent": percent,
        "created_at": iso(1),
        "ready_at": iso(2),
        "served_at": iso(3),
        "commit": "abc123",
        "commit_message": "v2 at " + str(percent),
        "seen": "built",
    }


# (kind, fields) in order: every kind replay folds, some twice, in the orders that change
# what it keeps (a move's intent, unsettled, then done; a rollback opening its checklist).
EVENTS: list[tuple[str, dict]] = [
    ("signoff", {"stage": "off", "step": "looked", "visit": 1, "note": "ok", "override": False}),
    ("deployment", deployment("dpl_1", 0) | {"seen": "read"}),
    ("trigger.raised", {"trigger": "complaints", "note": "two tickets"}),
    (
        "advance.intent",
        {
            "action": "a1",
            "from_stage": "off",
            "to_stage": "canary",
            "from_percent": 0,
            "to_percent": 10,
            "reason": "",
            "overrides": [{"gate": "slow", "reason": "waiting on 12 rows"}],
            "override_note": "looked at them: fine",
            "serving": deployment("dpl_2", 10),
        },
    ),
    ("move.unsettled", {"action": "a1", "pending": "dpl_2 BUILDING"}),
    ("advance.done", {"action": "a1", "flag_percent": 10, "took_s": 1.5, "pinned": None}),
    ("gap.accepted", {"gap_start": iso(-30), "gap_end": iso(-10), "note": "the db restarted"}),
    ("trigger.cleared", {"trigger": "complaints", "acknowledged": True, "note": "answered"}),
    ("trigger.raised", {"trigger": "oom", "note": "one pod"}),
    ("trigger.cleared", {"trigger": "complaints", "note": "gone"}),
    ("future.kind", {"what": "a kind this version does not know"}),
    (
        "rollback.intent",
        {
            "action": "r1",
            "from_stage": "canary",
            "to_stage": "off",
            "from_percent": 10,
            "to_percent": 0,
            "reason": "errors",
        },
    ),
    (
        "rollback.done",
        {
            "action": "r1",
            "flag_percent": 0,
            "took_s": 0.4,
            "pinned": "dpl_1",
            "served_before": deployment("dpl_1", 0),
        },
    ),
    ("signoff", {"checklist": "rollback", "step": "why", "stage": "off", "visit": 2, "note": "x"}),
    ("reconcile", {"to_stage": "off", "flag_percent": 0}),
    (
        "stepback.intent",
        {
            "action": "s1",
            "from_stage": "off",
            "to_stage": "off",
            "from_percent": 0,
            "to_percent": 0,
            "reason": "",
        },
    ),
    ("stepback.failed", {"action": "s1", "error": "the flag did not answer"}),
    ("signoff", {"stage": "off", "step": "looked", "visit": 3, "note": "again", "override": True}),
    (
        "advance.intent",
        {
            "action": "a2",
            "from_stage": "off",
            "to_stage": "canary",
            "from_percent": 0,
            "to_percent": 10,
            "reason": "",
        },
    ),
    ("advance.failed", {"action": "a2", "error": "build failed"}),
    (
        "advance.intent",
        {
            "action": "a3",
            "from_stage": "off",
            "to_stage": "canary",
            "from_percent": 0,
            "to_percent": 10,
            "reason": "",
        },
    ),
    ("advance.done", {"action": "a3", "flag_percent": 10, "took_s": 2, "pinned": None}),
    ("journal.break_accepted", {"problem": "line 1 changed", "note": "a test said so"}),
    (
        "advance.intent",
        {
            "action": "a4",
            "from_stage": "canary",
            "to_stage": "full",
            "from_percent": 10,
            "to_percent": 100,
            "reason": "",
        },
    ),
    ("advance.done", {"action": "a4", "flag_percent": 100, "took_s": 3}),
    ("complete", {"stage": "full", "overrides": [{"gate": "g", "reason": "r"}]}),
]
TORN_AFTER = 8  # a crash's partial line is left after this many events (the next one names it)


class Writer:
    """Appends EVENTS to the runbook's journal, as many at a time as asked."""

    def __init__(self, book: Path, key: str | None = None):
        self.path = journal_path(book)
        self.journal = Journal(
            self.path, actor="ana", host="h", clock=clock(), key=key.encode() if key else None
        )
        self.done = 0

    def write(self, upto: int | None = None) -> int:
        """EVENTS up to the `upto`th (all by default); how many events the journal holds (the
        torn line's acknowledgement is one more)."""
        for n in range(self.done, len(EVENTS) if upto is None else upto):
            kind, fields = EVENTS[n]
            if n == TORN_AFTER:
                with self.path.open("ab") as f:
                    f.write(b'{"seq": 9, "ts": "2026-03-01T09:0')  # a crash mid-write
            self.journal.append(kind, **fields)
            self.done = n + 1
        return len(self.journal.read().events)


def write_every_kind(book: Path, key: str | None = None, *, upto: int | None = None) -> int:
    return Writer(book, key).write(upto)


def full_state(book: Path, key: str | None = None) -> tuple[dict, tuple[str, ...]]:
    """The state from the first event (no checkpoint), as data, and the read's warnings."""
    book_ = loader.load(book)
    read = Journal(journal_path(book), key=key.encode() if key else None).read()
    assert read.chain is None, read.chain
    return statecodec.state_to_dict(state.replay(book_, read.events)), read.warnings
