"""Attacks on the journal's checkpoint (#20): it is a cache, never a source of truth. One
altered by a byte, made under another runbook or by another version, moved onto another
journal, written without the journal key, or naming an event the journal no longer has
where it had it (rewritten, cut back) is ignored: the whole journal is read, and the state
and its findings are what they are without a checkpoint."""

from __future__ import annotations

import json

import pytest

import cutover
from checkpoint_world import (
    BOOK,
    checkpoint_file,
    full_state,
    journal_path,
    session,
    write_book,
    write_every_kind,
)
from cutover.record import checkpoint, statecodec
from cutover.record.chain import digest

KEY = "k3y-for-the-journal-5be1d0"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A journal of every kind of event and the checkpoint a command left at its end."""
    monkeypatch.setattr(checkpoint, "EVERY", 1)
    book = write_book(tmp_path / "a")
    write_every_kind(book)
    session(book).state()
    assert checkpoint_file(book).exists()
    return book


def read_fresh(book, key=None):
    """A new command's state: (state as data, whether it used a checkpoint, its warnings)."""
    s = session(book, key)
    got, warnings = s.state()
    used = s._checkpoint is not None
    return got, used, warnings


def test_it_is_used_when_nothing_is_wrong(world):
    got, used, _ = read_fresh(world)
    assert used and statecodec.state_to_dict(got) == full_state(world)[0]


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_one_byte_changed_anywhere_and_it_is_ignored(world, where):
    raw = bytearray(checkpoint_file(world).read_bytes())
    at = int(len(raw) * where)
    raw[at] = ord("0") if raw[at] != ord("0") else ord("1")
    checkpoint_file(world).write_bytes(bytes(raw))
    got, used, warnings = read_fresh(world)
    assert not used
    assert statecodec.state_to_dict(got) == full_state(world)[0]
    assert not any("checkpoint" in w for w in warnings)  # a cache: nothing to alarm about


def test_a_forged_state_with_the_old_hash_is_ignored(world):
    """The state changed in a way that still parses (the cutover sent back to the canary
    with its sign-offs gone): its hash no longer covers it."""
    obj = json.loads(checkpoint_file(world).read_bytes())
    fields = obj["state"]["f"]
    fields["stage_id"], fields["completed"] = "canary", None
    checkpoint_file(world).write_text(json.dumps(obj))
    got, used, _ = read_fresh(world)
    assert not used and got.stage_id == "full" and got.completed is not None


def test_unkeyed_it_is_as_strong_as_the_unkeyed_chain(world):
    """Without a key, someone who recomputes its hash can write one, as they can rewrite
    the whole unkeyed journal: `journal --verify` is what tells (the README says so)."""
    obj = json.loads(checkpoint_file(world).read_bytes())
    obj["state"]["f"]["stage_id"] = "canary"
    obj["hash"] = digest(obj)
    checkpoint_file(world).write_text(json.dumps(obj))
    got, used, _ = read_fresh(world)
    assert used and got.stage_id == "canary"


def test_a_checkpoint_from_another_runbook_is_ignored(world):
    renamed = BOOK.replace('id = "canary"', 'id = "pilot"')
    (world.parent / "runbook.toml").write_text(renamed)
    got, used, _ = read_fresh(world)
    assert not used
    assert got.stage_id == "full" and "pilot" not in got.entries  # replayed anew
    # A percent changed is another runbook too: replay starts from the first stage's.
    (world.parent / "runbook.toml").write_text(BOOK.replace("percent = 100", "percent = 50"))
    assert not read_fresh(world)[1]


def test_a_checkpoint_made_by_another_version_is_ignored(world, monkeypatch):
    monkeypatch.setattr(cutover, "__version__", "9.9.9")
    assert not read_fresh(world)[1]


def test_a_journal_rewritten_at_the_checkpoint_is_read_whole_and_the_break_shows(world):
    mark = json.loads(checkpoint_file(world).read_bytes())
    path = journal_path(world)
    data = path.read_bytes()
    at = mark["offset"] - mark["line_length"]
    line = data[at : mark["offset"]]
    changed = line.replace(b'"ana"', b'"bob"', 1)
    assert changed != line and len(changed) == len(line)
    path.write_bytes(data[:at] + changed + data[mark["offset"] :])
    got, used, warnings = read_fresh(world)
    assert not used
    assert got.chain is not None and "does not match its hash" in warnings[0]


def test_a_journal_rewritten_before_it_is_read_whole_and_the_break_shows(world):
    """A line before the checkpoint's changed, the checkpoint's own line kept: the digest of
    every byte before it no longer matches, so the whole journal is read and the change is
    the break it is, for every command (not only `journal --verify`)."""
    path = journal_path(world)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"ana"', b'"bob"', 1)
    path.write_bytes(b"\n".join(lines))
    got, used, warnings = read_fresh(world)
    assert not used
    assert got.chain is not None and "line 3" in warnings[0], warnings
    found = session(world).journal.verify()
    assert not found.ok and found.first_bad_line == 3


def test_a_checkpoint_without_the_digest_before_it_is_ignored(world):
    """A files checkpoint must vouch for the bytes before its line: one whose digest was
    emptied (and its hash made again, as anyone can without a key) is not used."""
    obj = json.loads(checkpoint_file(world).read_bytes())

    def rewritten(**changed):
        made = {k: v for k, v in obj.items() if k != "hash"} | changed
        made["hash"] = digest(made, None)
        checkpoint_file(world).write_text(json.dumps(made) + "\n")
        return read_fresh(world)[1]

    assert rewritten()  # made again as it was: still used (the test's own control)
    assert not rewritten(prefix_sha256="")
    assert not rewritten(prefix_sha256="0" * 64)


def test_a_journal_cut_back_before_it_is_read_whole(world):
    mark = json.loads(checkpoint_file(world).read_bytes())
    path = journal_path(world)
    data = path.read_bytes()
    cut = data[: mark["offset"] - mark["line_length"]]
    path.write_bytes(cut)
    got, used, warnings = read_fresh(world)
    assert not used
    assert got.last_seq == mark["seq"] - 1
    assert got.chain is not None and "removed" in warnings[0]  # the head record says so


def test_a_journal_cut_back_after_it_is_read_whole(world):
    """The head record names a later event than the tail reaches: the whole read says
    what was removed, in its own words."""
    path = journal_path(world)
    size = path.stat().st_size
    mark = json.loads(checkpoint_file(world).read_bytes())
    session(world).journal.append("trigger.raised", trigger="oom", note="later")
    session(world).journal.append("trigger.raised", trigger="oom", note="later still")
    with path.open("r+b") as f:
        f.truncate(size)
    got, used, warnings = read_fresh(world)
    assert not used and got.last_seq == mark["seq"]
    assert got.chain is not None and "removed" in warnings[0]


def test_a_checkpoint_moved_onto_another_journal_is_ignored(world, tmp_path):
    """Another cutover's journal as long, and longer, under the same runbook: one event of
    its own first, so every line after differs (the same bytes would be the same journal)."""
    other = write_book(tmp_path / "b")
    session(other).journal.append("trigger.raised", trigger="oom", note="another cutover")
    write_every_kind(other)
    checkpoint_file(other).write_bytes(checkpoint_file(world).read_bytes())
    got, used, _ = read_fresh(other)
    assert not used and got.last_seq == full_state(world)[0]["f"]["last_seq"] + 1


def test_a_keyed_journal_refuses_a_checkpoint_made_without_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "EVERY", 1)
    book = write_book(tmp_path)
    write_every_kind(book, KEY)
    session(book, KEY).state()
    keyed = checkpoint_file(book).read_bytes()
    assert read_fresh(book, KEY)[1]  # with the key: used
    assert not read_fresh(book)[1]  # without it, not (nor is the chain whole)
    # Someone without the key writes one (the unkeyed hash, "keyed" or not): refused.
    for claims in (True, False):
        obj = json.loads(keyed)
        obj["keyed"] = claims
        obj["state"]["f"]["stage_id"] = "canary"
        obj["hash"] = digest(obj)
        checkpoint_file(book).write_text(json.dumps(obj))
        got, used, _ = read_fresh(book, KEY)
        assert not used and got.stage_id == "full"
    # Nor is one made under another key.
    obj = json.loads(keyed)
    obj["hash"] = digest(obj, b"another-key")
    checkpoint_file(book).write_text(json.dumps(obj))
    assert not read_fresh(book, KEY)[1]


def test_a_checkpoint_of_another_user_or_a_link_is_not_read(world, tmp_path):
    real = checkpoint_file(world)
    elsewhere = tmp_path / "elsewhere.checkpoint"
    elsewhere.write_bytes(real.read_bytes())
    real.unlink()
    real.symlink_to(elsewhere)
    assert not read_fresh(world)[1]
