"""The journal is the only state: what is written reads back, tampering is caught, crashes
and a second console are survived."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.record.identity import current_actor
from cutover.record.journal import (
    TORN_KIND,
    ActionBusy,
    Event,
    Journal,
    _digest,
    remove,
)

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def journal_at(tmp_path: Path, actor: str = "alice from 10.0.0.5") -> Journal:
    return Journal(tmp_path / "state" / "journal.jsonl", actor=actor, host="bastion", clock=Clock())


def lines_of(path: Path) -> list[str]:
    # Split on "\n" only, as the journal does: str.splitlines also splits on U+2028.
    return path.read_text(encoding="utf-8").split("\n")[:-1]  # drops what follows the last


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def run_python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


# -- what is written reads back ------------------------------------------------------------


def test_an_appended_event_reads_back_exactly_as_returned(tmp_path):
    journal = journal_at(tmp_path)
    started = datetime(2025, 6, 1, 11, 30, tzinfo=UTC)
    written = journal.append(
        "flag.set",
        stage="10 %",
        percent=10,
        gates=("success", "stuck"),
        started_at=started,
        note="ümlaut and a line\u2028separator stay on one line",
    )
    got = journal.read()
    assert got.warnings == ()
    assert got.events == (written,)
    event = got.events[0]
    assert (event.seq, event.kind, event.actor, event.host) == (
        1,
        "flag.set",
        "alice from 10.0.0.5",
        "bastion",
    )
    assert event.ts == T0 + timedelta(seconds=1) and event.ts.tzinfo is not None
    assert event.get("percent") == 10
    assert event.get("gates") == ["success", "stuck"]
    assert event.get("started_at") == "2025-06-01T11:30:00Z"
    assert event.get("missing", "default") == "default"
    assert len(lines_of(journal.path)) == 1  # U+2028 did not split the line


def test_the_line_on_disk_has_the_envelope_and_flattened_fields(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("signoff", step="no user complaints")
    obj = json.loads(lines_of(journal.path)[0])
    assert list(obj) == ["seq", "ts", "actor", "host", "kind", "step", "prev", "hash"]
    assert obj["ts"] == "2025-06-01T09:00:01Z"
    assert obj["prev"] == ""


def test_seq_counts_up_and_each_event_chains_to_the_one_before(tmp_path):
    journal = journal_at(tmp_path)
    events = [journal.append("probe", n=i) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.prev for e in events[1:]] == [e.hash for e in events[:-1]]
    check = journal.verify()
    assert check.ok and check.events == 5 and check.first_bad_seq is None, check.message


def test_field_names_that_would_overwrite_the_envelope_are_refused(tmp_path):
    journal = journal_at(tmp_path)
    for name in ("seq", "kind", "actor", "hash"):
        with pytest.raises(ValueError, match=name):
            journal.append("advance", **{name: "x"})
    assert not journal.path.exists()  # nothing half-written


def test_values_that_are_not_json_are_refused_with_the_field_named(tmp_path):
    journal = journal_at(tmp_path)
    with pytest.raises(ValueError, match="'target'"):
        journal.append("advance", target={1, 2})
    with pytest.raises(ValueError, match=r"'at'.*naive"):
        journal.append("advance", at=datetime(2025, 6, 1, 9, 0))
    # A number JSON cannot hold is a value all the same (a query may answer it): as text.
    assert journal.append("advance", ratio=float("nan")).fields["ratio"] == "NaN"


def test_a_journal_that_does_not_exist_yet_reads_as_empty(tmp_path):
    journal = journal_at(tmp_path)
    assert journal.read().events == ()
    assert journal.verify().ok
    assert journal.tail_since(0) == ()


# -- tampering is caught -------------------------------------------------------------------


def test_editing_a_field_in_the_middle_is_caught_at_that_seq(tmp_path):
    journal = journal_at(tmp_path)
    for percent in (0, 10, 50, 100):
        journal.append("flag.set", percent=percent)
    lines = lines_of(journal.path)
    lines[2] = lines[2].replace('"percent": 50', '"percent": 5')
    write_lines(journal.path, lines)

    check = journal.verify()
    assert not check.ok
    assert check.first_bad_seq == 3
    assert "seq 3" in check.message
    assert check.events == 4


def test_editing_a_field_and_its_hash_is_caught_by_the_next_link(tmp_path):
    journal = journal_at(tmp_path)
    for percent in (0, 10, 50):
        journal.append("flag.set", percent=percent)
    lines = lines_of(journal.path)
    forged = json.loads(lines[1])
    forged["percent"] = 100
    forged["hash"] = _digest(forged)  # the recipe is no secret; the next line's prev is
    lines[1] = json.dumps(forged)
    write_lines(journal.path, lines)

    check = journal.verify()
    assert not check.ok and check.first_bad_seq == 3, check.message


def test_deleting_a_line_is_reported_as_the_missing_seq(tmp_path):
    journal = journal_at(tmp_path)
    for i in range(5):
        journal.append("probe", n=i)
    lines = lines_of(journal.path)
    del lines[3]  # seq 4
    write_lines(journal.path, lines)

    check = journal.verify()
    assert not check.ok
    assert check.first_bad_seq == 4
    assert "seq 4 is missing" in check.message


def test_garbage_in_the_middle_fails_verify_but_read_skips_it(tmp_path):
    journal = journal_at(tmp_path)
    for i in range(3):
        journal.append("probe", n=i)
    lines = lines_of(journal.path)
    lines.insert(1, "this was typed in by hand")
    write_lines(journal.path, lines)

    got = journal.read()
    assert [e.seq for e in got.events] == [1, 2, 3]
    assert len(got.warnings) == 1 and "line 2" in got.warnings[0]
    check = journal.verify()
    assert not check.ok
    assert check.first_bad_line == 2 and "line 2" in check.message


# -- a crash mid-write is survived ---------------------------------------------------------


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_append_is_valid(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("advance.intent", percent=10)
    second = journal.append("advance.done", percent=10)
    whole = json.dumps({"seq": 3, "kind": "rollback.intent", "percent": 0})
    with journal.path.open("a", encoding="utf-8") as f:
        f.write(whole[: len(whole) // 2])  # the crash: half a line, no newline

    got = journal.read()
    assert [e.seq for e in got.events] == [1, 2]
    assert got.warnings == ("journal line 3 is torn (a crash mid-write?); skipped",)
    assert journal.verify().ok  # a torn last line alone is a warning, not a broken chain

    after = journal.append("rollback.intent", percent=0)
    got = journal.read()
    kinds = [(e.seq, e.kind) for e in got.events]
    assert kinds == [
        (1, "advance.intent"),
        (2, "advance.done"),
        (3, TORN_KIND),
        (4, "rollback.intent"),
    ]
    assert got.events[-1] == after
    assert got.events[2].prev == second.hash  # chained past the torn bytes
    assert got.warnings == ("journal line 3 is torn (a crash mid-write?); skipped",)
    lines = lines_of(journal.path)
    assert lines[2] == whole[: len(whole) // 2]  # the torn line is kept, untouched
    check = journal.verify()
    assert check.ok and check.events == 4, check.message
    assert "torn" in check.message


def test_a_line_inserted_where_a_crash_was_is_not_excused_as_one(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("advance.intent", percent=10)
    with journal.path.open("a", encoding="utf-8") as f:
        f.write('{"seq": 2, "ki')
    journal.append("advance.done", percent=10)
    lines = lines_of(journal.path)
    lines[1] = '{"seq": 2, "kX'  # someone edits the torn bytes after the fact
    write_lines(journal.path, lines)

    check = journal.verify()
    assert not check.ok and check.first_bad_line == 2, check.message


# -- several consoles, one journal ---------------------------------------------------------

APPENDER = """
    import sys, time
    from pathlib import Path
    from cutover.record.journal import Journal
    path, who, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    journal = Journal(path, actor=who, host="bastion")
    while not go.exists():
        time.sleep(0.001)
    for i in range(200):
        journal.append("probe", n=i)
"""


def test_two_processes_appending_at_once_get_unique_seqs_and_one_chain(tmp_path):
    path, go = tmp_path / "journal.jsonl", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(APPENDER), str(path), who, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("alice", "bob")
    ]
    time.sleep(0.5)  # both are waiting at the line
    go.touch()
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()

    journal = Journal(path, actor="carol", host="bastion")
    got = journal.read()
    assert got.warnings == ()
    assert [e.seq for e in got.events] == list(range(1, 401))
    check = journal.verify()
    assert check.ok and check.events == 400, check.message
    for who in ("alice", "bob"):
        assert [e.get("n") for e in got.events if e.actor == who] == list(range(200))
    # They really did write at the same time, so the lock is what kept the chain whole.
    switches = sum(a.actor != b.actor for a, b in zip(got.events, got.events[1:], strict=False))
    assert switches > 1


HOLDER = """
    import sys
    from pathlib import Path
    from cutover.record.journal import Journal
    journal = Journal(Path(sys.argv[1]), actor="alice from 10.0.0.5", host="bastion")
    with journal.action_lock("advance to 50 %"):
        print("held", flush=True)
        sys.stdin.readline()
"""


def test_a_second_console_is_told_who_holds_the_action_lock(tmp_path):
    path = tmp_path / "journal.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        me = Journal(path, actor="bob", host="laptop")
        with pytest.raises(ActionBusy) as busy, me.action_lock("rollback to 0 %"):
            pytest.fail("got the lock while another process held it")
        assert "alice from 10.0.0.5" in busy.value.holder
        assert "advance to 50 %" in busy.value.holder
        assert f"pid {holder.pid}" in busy.value.holder
        assert "since 20" in busy.value.holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    with me.action_lock("rollback to 0 %"):  # free again once the holder has finished
        assert "rollback to 0 %" in me.lock_path.read_text()
    assert me.lock_path.read_text() == ""


def test_a_holder_that_dies_does_not_leave_the_lock_held(tmp_path):
    path = tmp_path / "journal.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait(timeout=10)
    with Journal(path, actor="bob", host="laptop").action_lock("rollback to 0 %"):
        pass


# -- who did it ----------------------------------------------------------------------------


def test_the_actor_is_the_human_behind_sudo_and_where_they_came_from():
    ssh = {"SSH_CONNECTION": "203.0.113.7 51234 10.0.0.2 22"}
    assert current_actor({"SUDO_USER": "alice", "USER": "root", **ssh}) == (
        "alice from 203.0.113.7"
    )
    assert current_actor({"USER": "bob"}) == "bob"
    assert current_actor({"LOGNAME": "carol", **ssh}) == "carol from 203.0.113.7"


def test_a_journal_without_an_actor_given_uses_the_session_login(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "dave")
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    event = Journal(tmp_path / "j.jsonl", host="bastion").append("note", text="hi")
    assert event.actor == "dave"


# -- following the journal -----------------------------------------------------------------


def test_tail_since_returns_only_the_events_after_the_seq_given(tmp_path):
    writer = journal_at(tmp_path)
    watcher = Journal(writer.path, actor="watcher", host="bastion")
    for i in range(3):
        writer.append("probe", n=i)
    assert [e.seq for e in watcher.tail_since(0)] == [1, 2, 3]
    assert watcher.tail_since(3) == ()

    writer.append("advance.intent", percent=50)
    writer.append("advance.done", percent=50)
    new = watcher.tail_since(3)
    assert [(e.seq, e.kind) for e in new] == [(4, "advance.intent"), (5, "advance.done")]
    assert new == writer.read().events[3:]
    assert [e.seq for e in watcher.tail_since(1)] == [2, 3, 4, 5]  # going back works too


def test_tail_since_waits_out_a_torn_line_and_picks_up_what_follows(tmp_path):
    writer = journal_at(tmp_path)
    watcher = Journal(writer.path, actor="watcher", host="bastion")
    writer.append("probe", n=0)
    assert len(watcher.tail_since(0)) == 1
    with writer.path.open("a", encoding="utf-8") as f:
        f.write('{"seq": 2, "kin')
    assert watcher.tail_since(1) == ()
    writer.append("rollback.intent", percent=0)
    assert [e.kind for e in watcher.tail_since(1)] == [TORN_KIND, "rollback.intent"]


def test_event_is_a_frozen_value():
    event = Event(1, T0, "a", "h", "k", {}, "", "x")
    with pytest.raises(AttributeError):
        event.seq = 2  # type: ignore[misc]


# -- the head record and the long-lived reader ---------------------------------------------


def test_kinds_this_version_does_not_know_are_a_note_in_verify_and_skipped_on_replay(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("signoff", stage="prep", step="ready", visit=1, note="", override=False)
    journal.append("flag.audited", percent=10)  # a newer cutover wrote it
    journal.append("flag.audited", percent=10)
    check = journal.verify()
    assert check.ok, check.message
    assert check.notes == (
        "2 events of kind 'flag.audited', which this version of cutover does not know "
        "(first at seq 2, line 2): replay skips them",
    )
    assert check.message.endswith("; note: " + check.notes[0])
    assert journal.read().notes == check.notes


def test_a_journal_from_before_head_records_warns_until_the_next_entry_writes_one(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("probe", n=1)
    journal.head_path.unlink()
    got = Journal(journal.path).read()
    assert got.chain is None
    assert got.warnings == (
        "the journal has no head record (journal.jsonl.head) yet, so removing its last lines "
        "would go unnoticed; the next entry writes one",
    )
    last = journal.append("probe", n=2)
    assert json.loads(journal.head_path.read_text()) == {
        "seq": 2,
        "hash": last.hash,
        "size": journal.path.stat().st_size,
    }
    assert Journal(journal.path).read().warnings == ()


def test_a_head_record_left_behind_by_a_crash_is_not_a_finding_and_catches_up(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("probe", n=1)
    behind = journal.head_path.read_bytes()
    journal.append("probe", n=2)
    journal.head_path.write_bytes(behind)  # the crash came between the append and its record
    assert Journal(journal.path).read() == Journal(journal.path).read()
    assert Journal(journal.path).read().chain is None
    last = journal.append("probe", n=3)
    assert json.loads(journal.head_path.read_text())["seq"] == last.seq == 3


def test_starting_a_journal_over_on_purpose_removes_its_head_record_too(tmp_path):
    journal = journal_at(tmp_path)
    for i in range(3):
        journal.append("probe", n=i)
    remove(journal.path)
    assert not journal.path.exists() and not journal.head_path.exists()
    journal.append("probe", n=0)
    got = Journal(journal.path).read()
    assert got.chain is None and got.warnings == ()


def test_a_long_lived_reader_reads_only_what_is_new_and_agrees_with_a_fresh_one(tmp_path):
    writer = journal_at(tmp_path)
    console = Journal(writer.path, actor="watcher", host="bastion")

    def agree() -> None:
        fresh = Journal(writer.path, actor="fresh", host="bastion").read()
        assert console.read() == fresh

    agree()
    for i in range(3):
        writer.append("probe", n=i)
        agree()
    with writer.path.open("a", encoding="utf-8") as f:
        f.write('{"seq": 4, "ki')  # a crash mid-write
    agree()
    writer.append("rollback.intent", percent=0)  # acknowledges it
    agree()
    first = console.read().events[0]
    writer.append("probe", n=9)
    assert console.read().events[0] is first  # kept, not read again
    agree()
    with writer.path.open("a", encoding="utf-8") as f:
        f.write("typed by hand\n")
    agree()
    writer.append("rollback.done", percent=0)
    agree()
    assert console.read().chain is not None


def test_a_complete_last_event_that_lost_its_newline_counts_and_the_next_entry_ends_it(tmp_path):
    journal = journal_at(tmp_path)
    journal.append("probe", n=1)
    head = journal.head_path.read_bytes()
    second = journal.append("probe", n=2)
    # Power lost before the "\n" reached the disk, so before the head record was written.
    journal.path.write_bytes(journal.path.read_bytes()[:-1])
    journal.head_path.write_bytes(head)
    got = Journal(journal.path).read()
    assert got.events[-1] == second and got.chain is None
    assert journal.tail_since(1) == ()  # only whole lines are news
    third = journal.append("probe", n=3)
    assert third.prev == second.hash
    assert Journal(journal.path).verify().ok
