"""What the watcher says of others' actions, and what the demo's watcher log may hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cutover.base.private import open_private
from cutover.demo.watcher import DemoWatcher
from cutover.record.chain import Event
from cutover.record.events import Kind
from cutover.runbook import loader as runbook
from cutover.watch.words import describe_event

REPO = Path(__file__).resolve().parents[1]


def _cleared(**fields: object) -> Event:
    return Event(
        1,
        datetime(2026, 11, 26, tzinfo=UTC),
        "bob",
        "h",
        Kind.TRIGGER_CLEARED.value,
        {"trigger": "memory", "note": "looking", **fields},
        "",
        "",
    )


def test_an_answered_deadline_is_not_said_to_be_a_cleared_trigger():
    said = describe_event(_cleared(acknowledged=True))
    assert "cleared" not in said
    assert "memory" in said and "still fires" in said and "holds advance" in said
    assert describe_event(_cleared()) == "bob cleared trigger memory: looking"


def test_the_demo_watchers_log_holds_no_secret_and_no_escape_sequence(tmp_path: Path):
    book = runbook.load(REPO / "runbook.toml")
    env = {"CUTOVER_DATABASE_URL": "postgresql://ro:s3cretpw@db.example/x"}
    watcher = DemoWatcher(book, env, tmp_path / "watch.log")
    watcher._file = open_private(watcher.log_path, "a", encoding="utf-8")
    watcher._write(
        "the demo's watcher stopped: OSError: cannot reach "
        "postgresql://ro:s3cretpw@db.example/x \x1b]0;pwned\x07\x1b[2J"
    )
    watcher._file.close()
    written = watcher.log_path.read_text(encoding="utf-8")
    assert "s3cretpw" not in written
    assert "\x1b" not in written and "\x07" not in written
    assert "cannot reach" in written
