"""A journal changed behind cutover's back is caught where it was changed, at every read: an
edited timestamp must not skip a hold, removed last lines must not go unnoticed, garbage is
not a crash, and a rollback is still written whatever state the journal is in."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.judge.session import Session
from cutover.record.chain import digest
from cutover.record.events import Kind
from cutover.record.journal import Journal
from cutover.runbook import loader as runbook
from cutover.traffic.signoff import SignOffRefused, sign_off

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOLD = timedelta(hours=24)

RUNBOOK = """\
version = 1
title = "drill"

[flag]
kind = "file"
path = "percent"

[[stages]]
id = "prep"
percent = 0

  [[stages.steps]]
  id = "ready"
  text = "Ready"

[[stages]]
id = "canary"
percent = 10
hold = "24h"

  [[stages.steps]]
  id = "complaints"
  text = "No complaints"

[[stages]]
id = "half"
percent = 50
"""


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def drill(tmp_path: Path) -> Path:
    (tmp_path / "percent").write_text("10\n")
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK)
    return path


def into_canary(journal: Journal) -> None:
    """prep signed, then an advance into canary: three events, the canary's hold starting
    at the third (seq 3, line 3)."""
    journal.append(Kind.SIGNOFF, stage="prep", step="ready", visit=1, note="", override=False)
    journal.append(
        Kind.ADVANCE_INTENT,
        action="a1",
        from_stage="prep",
        to_stage="canary",
        from_percent=0,
        to_percent=10,
        reason="",
    )
    journal.append(Kind.ADVANCE_DONE, action="a1", flag_percent=10, verified="read back")


def session_on(path: Path) -> Session:
    return Session(runbook.load(path), {"USER": "ana", "PATH": os.environ.get("PATH", "")})


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def edit_line(path: Path, number: int, change: Callable[[dict], None]) -> None:
    """Change one event by hand and write it back as it was serialised: what an operator
    with an editor, or sed, would do."""
    lines = lines_of(path)
    obj = json.loads(lines[number - 1])
    change(obj)
    lines[number - 1] = json.dumps(obj, ensure_ascii=False)
    write_lines(path, lines)


def cutover(runbook_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SUDO_USER")}
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook_path), *args],
        capture_output=True,
        text=True,
        env={**env, "USER": "ana"},
        timeout=60,
    )


def a_journal(tmp_path: Path, events: int = 5) -> Journal:
    journal = Journal(tmp_path / ".cutover" / "journal.jsonl", actor="ana", clock=Clock())
    for i in range(events):
        journal.append("probe.ran", n=i)
    return journal


# -- an edited timestamp -------------------------------------------------------------------


def backdate_the_canary(path: Path) -> None:
    def earlier(obj: dict) -> None:
        obj["ts"] = (T0 - HOLD - timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    edit_line(path, 3, earlier)


async def test_an_edited_timestamp_does_not_skip_a_hold_it_breaks_the_chain_and_refuses_sign_off(
    tmp_path,
):
    path = drill(tmp_path)
    session = session_on(path)
    into_canary(Journal(session.runbook.journal_path, actor="ana", clock=Clock()))
    backdate_the_canary(session.runbook.journal_path)

    state, warnings = session.state()
    # What the edit was for: the hold now looks served. The state says not to believe it.
    assert state.stage_id == "canary"
    assert state.hold_elapsed_s(T0 + timedelta(minutes=5)) > HOLD.total_seconds()
    assert state.chain is not None
    assert (state.chain.line, state.chain.seq) == (3, 3)
    assert state.chain.message.startswith(
        "journal line 3 (seq 3) does not match its hash: changed after it was written"
    )
    assert "rollback still works" in state.chain.message
    assert warnings[0] == state.chain.message
    assert state.chain.summary == "line 3 (seq 3) changed after it was written"

    with pytest.raises(SignOffRefused, match=r"journal line 3 \(seq 3\)"):
        await sign_off(session, "complaints", note="looked fine")
    assert len(lines_of(session.runbook.journal_path)) == 3  # nothing was signed


def test_the_cli_refuses_sign_off_on_an_edited_journal_and_every_command_says_where(tmp_path):
    path = drill(tmp_path)
    into_canary(Journal(runbook.load(path).journal_path, actor="ana", clock=Clock()))
    backdate_the_canary(runbook.load(path).journal_path)

    signed = cutover(path, "signoff", "complaints", "--note", "looked fine")
    assert signed.returncode == 1, signed.stderr
    assert "journal line 3 (seq 3)" in signed.stderr
    assert "Traceback" not in signed.stderr

    for command in ("status", "journal"):
        done = cutover(path, command)
        assert "warning: journal line 3 (seq 3) does not match its hash" in done.stderr, command

    verified = cutover(path, "journal", "--verify", "--json")
    assert verified.returncode == 1
    got = json.loads(verified.stdout)
    assert (got["ok"], got["first_bad_seq"], got["first_bad_line"]) == (False, 3, 3)


# -- removed, added and cut-short lines ----------------------------------------------------


def remove_last_two(journal: Journal) -> None:
    write_lines(journal.path, lines_of(journal.path)[:-2])


def add_a_garbage_line(journal: Journal) -> None:
    with journal.path.open("a", encoding="utf-8") as f:
        f.write("looks harmless\n")


def cut_mid_line(journal: Journal) -> None:
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[: len(data) - 40])


def forge_line_3(journal: Journal) -> None:
    """A valid-looking event with a correct hash of its own, linked to nothing."""

    def forge(obj: dict) -> None:
        obj["n"] = 99
        obj["prev"] = "0" * 64
        obj["hash"] = digest(obj)

    edit_line(journal.path, 3, forge)


def test_removing_the_last_two_lines_is_caught_through_the_head_record(tmp_path):
    journal = a_journal(tmp_path)
    remove_last_two(journal)

    check = Journal(journal.path).verify()
    assert not check.ok and check.first_bad_seq == 4, check.message
    got = Journal(journal.path).read()
    assert [e.seq for e in got.events] == [1, 2, 3]
    assert got.chain is not None
    assert got.chain.detail.startswith(
        "the last 2 events (seq 4–5) were removed: the head record (journal.jsonl.head) says seq 5"
    )
    assert (got.chain.seq, got.chain.line) == (4, 4)


def test_a_whole_garbage_line_at_the_end_is_an_edit_not_a_torn_line(tmp_path):
    journal = a_journal(tmp_path)
    add_a_garbage_line(journal)

    check = Journal(journal.path).verify()
    assert not check.ok and check.first_bad_line == 6, check.message
    got = Journal(journal.path).read()
    assert got.chain is not None and got.chain.line == 6 and got.chain.seq is None
    assert "journal line 6 (after seq 5) is not a journal event" in got.chain.detail
    assert not any("torn" in w for w in got.warnings)


def test_a_partial_last_line_is_a_warning_and_the_next_entry_acknowledges_it(tmp_path):
    journal = a_journal(tmp_path)
    with journal.path.open("a", encoding="utf-8") as f:
        f.write('{"seq": 6, "ts": "2026-')  # a crash mid-write: no newline

    got = Journal(journal.path).read()
    assert got.chain is None
    assert got.warnings == ("journal line 6 is torn (a crash mid-write?); skipped",)
    assert Journal(journal.path).verify().ok

    after = journal.append(Kind.ROLLBACK_INTENT, action="r1", reason="drill")
    got = Journal(journal.path).read()
    assert got.chain is None
    assert [(e.seq, e.kind) for e in got.events[-2:]] == [(6, Kind.TORN), (7, "rollback.intent")]
    assert got.events[-1] == after
    check = Journal(journal.path).verify()
    assert check.ok and check.events == 7, check.message
    head = json.loads(journal.head_path.read_text())
    assert (head["seq"], head["hash"]) == (7, after.hash)


def test_a_journal_cut_short_mid_line_is_caught_through_the_head_record(tmp_path):
    journal = a_journal(tmp_path)
    cut_mid_line(journal)

    check = Journal(journal.path).verify()
    assert not check.ok and check.first_bad_seq == 5, check.message
    got = Journal(journal.path).read()
    # It looks like a crash mid-write, but the head record says seq 5 was written whole.
    assert "journal line 5 is torn (a crash mid-write?); skipped" in got.warnings
    assert got.chain is not None
    assert got.chain.detail.startswith("the last event (seq 5) was removed")


def test_without_a_head_record_a_cut_short_journal_reads_as_a_crash_and_says_it_cannot_tell(
    tmp_path,
):
    journal = a_journal(tmp_path)
    journal.head_path.unlink()  # a journal written before head records
    cut_mid_line(journal)

    got = Journal(journal.path).read()
    assert got.chain is None
    assert "journal line 5 is torn (a crash mid-write?); skipped" in got.warnings
    assert any("no head record" in w for w in got.warnings)


def test_a_forged_line_with_its_own_correct_hash_but_the_wrong_link_is_caught(tmp_path):
    journal = a_journal(tmp_path)
    forge_line_3(journal)

    got = Journal(journal.path).read()
    assert got.chain is not None and (got.chain.line, got.chain.seq) == (3, 3)
    assert "does not chain to the event before it" in got.chain.detail


def test_a_deleted_journal_whose_head_record_remains_is_caught(tmp_path):
    journal = a_journal(tmp_path, events=3)
    journal.path.unlink()

    got = Journal(journal.path).read()
    assert got.events == () and got.chain is not None
    assert "all 3 events were removed" in got.chain.detail


def test_an_edited_head_record_is_a_finding_not_a_crash(tmp_path):
    journal = a_journal(tmp_path, events=3)
    journal.head_path.write_text("{}\n")

    got = Journal(journal.path).read()
    assert got.chain is not None and "head record (journal.jsonl.head) is unreadable" in (
        got.chain.detail
    )


# -- a rollback is written whatever the journal's state ------------------------------------

BREAKAGES: dict[str, Callable[[Journal], None]] = {
    "edited": lambda j: edit_line(j.path, 3, lambda o: o.update(ts="2026-11-18T09:00:03Z")),
    "last two removed": remove_last_two,
    "garbage line": add_a_garbage_line,
    "cut mid-line": cut_mid_line,
    "forged": forge_line_3,
    "head record edited": lambda j: j.head_path.write_text("garbage\n"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_rollback_is_journaled_on_a_broken_journal_and_the_evidence_stays(tmp_path, breakage):
    journal = a_journal(tmp_path)
    BREAKAGES[breakage](journal)
    before = Journal(journal.path).read().chain
    assert before is not None
    head_before = journal.head_path.read_bytes()

    rollback = Journal(journal.path, actor="bob", clock=Clock(T0 + HOLD))
    intent = rollback.append(
        Kind.ROLLBACK_INTENT, action="r1", reason="drill", chain_broken=before.summary
    )
    done = rollback.append(Kind.ROLLBACK_DONE, action="r1", flag_percent=0)

    got = Journal(journal.path).read()
    assert got.events[-2:] == (intent, done)
    assert done.prev == intent.hash
    assert intent.get("chain_broken") == before.summary
    # Nothing the rollback wrote excused what was found: same place.
    assert got.chain is not None
    if breakage in ("last two removed", "cut mid-line"):
        # The seqs the head record named were written again; it still names the old ones.
        assert "is not the event its head record" in got.chain.detail
        assert journal.head_path.read_bytes() == head_before
    else:
        assert (got.chain.line, got.chain.seq, got.chain.summary) == (
            before.line,
            before.seq,
            before.summary,
        )
    if breakage == "head record edited":
        assert journal.head_path.read_bytes() == head_before


# -- the console's long-lived reader -------------------------------------------------------


def test_a_long_lived_reader_notices_the_last_line_it_verified_being_edited(tmp_path):
    journal = a_journal(tmp_path, events=3)
    console = Journal(journal.path)
    assert console.read().chain is None

    edit_line(journal.path, 3, lambda o: o.update(n=7))  # same length, same link for seq 4
    journal.append("probe.ran", n=4)

    got = console.read()
    assert got.chain is not None and (got.chain.line, got.chain.seq) == (3, 3)
    assert [e.seq for e in console.tail_since(3)] == [4]


def test_a_long_lived_reader_starts_over_when_the_file_is_replaced(tmp_path):
    journal = a_journal(tmp_path, events=3)
    console = Journal(journal.path)
    assert console.read().chain is None

    # A copy with its first line edited and one more event, renamed over the journal: the
    # last line the console verified is still there, byte for byte.
    copy = tmp_path / ".cutover" / "copy.jsonl"
    shutil.copy(journal.path, copy)
    shutil.copy(journal.head_path, tmp_path / ".cutover" / "copy.jsonl.head")
    edit_line(copy, 1, lambda o: o.update(n=7))
    Journal(copy, actor="mallory", clock=Clock(T0 + HOLD)).append("probe.ran", n=4)
    os.replace(copy, journal.path)

    got = console.read()
    assert got.chain is not None and (got.chain.line, got.chain.seq) == (1, 1)


def test_a_long_lived_reader_notices_an_edit_that_keeps_the_size(tmp_path):
    journal = a_journal(tmp_path, events=3)
    console = Journal(journal.path)
    assert console.read().chain is None
    edit_line(journal.path, 1, lambda o: o.update(n=7))
    got = console.read()
    assert got.chain is not None and got.chain.line == 1


# -- only the owner can read the journal ---------------------------------------------------


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # what most shells have: new files 0644, folders 0755
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_journal_its_lock_and_head_record_are_0600_in_folders_0700(tmp_path, open_umask):
    journal = Journal(tmp_path / "state" / ".cutover" / "journal.jsonl", actor="ana")
    journal.append("probe.ran", n=1)
    with journal.action_lock("rollback to 0 %"):
        pass
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / ".cutover") == 0o700
    for path in (journal.path, journal.lock_path, journal.head_path):
        assert mode(path) == 0o600, path
    assert journal.read().warnings == ()


def test_an_older_journal_left_readable_by_others_is_made_private_and_said_once(
    tmp_path, open_umask
):
    folder = tmp_path / ".cutover"
    folder.mkdir(mode=0o755)
    journal = Journal(folder / "journal.jsonl", actor="ana")
    journal.append("probe.ran", n=1)
    for path in (journal.path, journal.lock_path, journal.head_path):
        path.touch()
        os.chmod(path, 0o644)
    os.chmod(folder, 0o755)

    got = Journal(journal.path).read()
    assert got.warnings == (
        "made the journal's files private (only their owner can read them): "
        ".cutover 0755 → 0700, journal.jsonl 0644 → 0600, journal.jsonl.lock 0644 → 0600, "
        "journal.jsonl.head 0644 → 0600",
    )
    assert mode(folder) == 0o700
    for path in (journal.path, journal.lock_path, journal.head_path):
        assert mode(path) == 0o600, path
    assert Journal(journal.path).read().warnings == ()  # said once: nothing left to say


def test_a_folder_that_is_not_cutovers_is_left_alone_unless_others_can_write_it(
    tmp_path, open_umask
):
    shared = tmp_path / "ops"
    shared.mkdir(mode=0o755)
    journal = Journal(shared / "journal.jsonl", actor="ana")
    journal.append("probe.ran", n=1)
    assert mode(shared) == 0o755  # the operator's folder: listing it shows no contents
    assert Journal(journal.path).read().warnings == ()

    os.chmod(shared, 0o777)
    warnings = Journal(journal.path).read().warnings
    assert mode(shared) == 0o777
    assert len(warnings) == 1 and "others can replace" in warnings[0]
    assert f"chmod 700 {shared}" in warnings[0] or f"chmod go-w {shared}" in warnings[0]


def test_signing_off_is_not_refused_on_a_whole_journal(tmp_path):
    path = drill(tmp_path)
    session = session_on(path)
    into_canary(Journal(session.runbook.journal_path, actor="ana", clock=Clock()))
    signed = asyncio.run(sign_off(session, "complaints", note="quiet"))
    assert signed.event.seq == 4
    assert session.state()[0].chain is None


DAMAGE = [
    b"\n",
    b"{}\n",
    b'{"seq": 2}',
    b"\xff\xfe",
    b'{"seq":1,"ts":"2026-01-01T00:00:00Z","actor":"a","host":"h","kind":"x","prev":"",'
    b'"hash":"zz"}\n',
]


def damage(rng: random.Random, journal: Journal) -> None:
    data = bytearray(journal.path.read_bytes()) if journal.path.exists() else bytearray()
    how = rng.choice(["flip", "cut", "insert", "repeat", "head"])
    if how == "flip" and data:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == "cut" and data:
        del data[rng.randrange(len(data)) :]
    elif how == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice(DAMAGE)
    elif how == "repeat" and data:
        lines = bytes(data).split(b"\n")
        at = rng.randrange(len(lines))
        lines.insert(at, lines[at])
        data = bytearray(b"\n".join(lines))
    elif how == "head":
        journal.head_path.write_bytes(rng.choice([b"", b"{}", b'{"seq": 99, "size": 1}']))
        return
    journal.path.write_bytes(bytes(data))


def test_no_damage_stops_a_rollback_or_is_excused_by_it_and_the_console_agrees(tmp_path):
    """Seeded random damage (bytes flipped, the file cut, lines inserted or repeated, the
    head record overwritten): reading never crashes, the console's reader agrees with a
    fresh one, the rollback is written, and what was found before it is still found."""
    rng = random.Random(20261120)
    old = os.umask(0o077)  # the damage writes new files: keep permission notices out of it
    try:
        for trial in range(120):
            folder = tmp_path / str(trial)
            folder.mkdir()
            journal = Journal(folder / "journal.jsonl", actor="ana", host="bastion")
            for i in range(rng.randint(0, 5)):
                journal.append(Kind.SIGNOFF, stage="prep", step=f"s{i}", note="é\u2028")
            console = Journal(journal.path)
            console.read()
            damage(rng, journal)

            found = Journal(journal.path).read()
            seen = console.read()
            assert (seen.events, seen.warnings, seen.chain) == (
                found.events,
                found.warnings,
                found.chain,
            ), trial
            assert Journal(journal.path).verify().ok == (found.chain is None), trial
            rollback = Journal(journal.path, actor="bob", host="bastion")
            intent = rollback.append(Kind.ROLLBACK_INTENT, action="r1", reason="drill")
            after = Journal(journal.path).read()
            assert after.events[-1] == intent, trial
            if found.chain is not None:
                assert after.chain is not None, (trial, found.chain)
            seen = console.read()
            assert (seen.events, seen.chain) == (after.events, after.chain), trial
    finally:
        os.umask(old)


def test_a_head_record_that_cannot_be_written_does_not_stop_a_rollback(tmp_path):
    journal = a_journal(tmp_path, events=2)
    stuck = journal.head_path.with_name(journal.head_path.name + ".tmp")
    stuck.mkdir()  # something in the way of the new record (a full disk does the same)

    intent = journal.append(Kind.ROLLBACK_INTENT, action="r1", reason="drill")

    got = journal.read()
    assert got.events[-1] == intent and got.chain is None  # a record behind is no finding
    assert any(w.startswith("the journal's head record could not be updated") for w in got.warnings)
    stuck.rmdir()
    done = journal.append(Kind.ROLLBACK_DONE, action="r1", flag_percent=0)
    assert json.loads(journal.head_path.read_text())["seq"] == done.seq
    assert journal.read().warnings == ()
