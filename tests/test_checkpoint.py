"""The journal's checkpoint (#20): the state read on from a checkpoint, replaying only the
events after it, is the state replayed from the first event, whatever event it was made at;
it is made by a command that replayed EVERY events past the last one, never in a rollback,
and a command with one parses no line before it (it hashes them)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from checkpoint_world import (
    EVENTS,
    Writer,
    checkpoint_file,
    full_state,
    journal_path,
    session,
    write_book,
    write_every_kind,
)
from cutover.record import checkpoint, state, statecodec, urgent
from cutover.record.chain import Chain
from cutover.record.journal import Journal


@pytest.fixture
def every_event(monkeypatch):
    """A checkpoint after every event (the shipped one waits for 1,000)."""
    monkeypatch.setattr(checkpoint, "EVERY", 1)


def test_the_state_from_any_checkpoint_plus_its_tail_is_the_full_replay(tmp_path, every_event):
    book = write_book(tmp_path)
    writer = Writer(book)
    kept: dict[int, bytes] = {}
    for upto in range(1, len(EVENTS) + 1):
        writer.write(upto)
        current, _ = session(book).state()
        kept[current.last_seq] = checkpoint_file(book).read_bytes()
        assert json.loads(kept[current.last_seq])["seq"] == current.last_seq
    want, warnings = full_state(book)
    assert any("torn" in w for w in warnings)  # the prefix's finding, kept by the mark
    assert len(kept) == len(EVENTS)  # one after each (the torn line's note is one more event)
    for seq, raw in sorted(kept.items()):
        checkpoint_file(book).write_bytes(raw)
        s = session(book)
        got, said = s.state()
        assert s._checkpoint is not None and s._checkpoint.mark.seq == seq
        assert statecodec.state_to_dict(got) == want, f"from the checkpoint at seq {seq}"
        assert said == warnings
        assert s.journal.read().notes == Journal(journal_path(book)).read().notes
    # The checkpoints between them held every part of the state (pending moves, a pin, the
    # rollback checklist signed, raised triggers...), not just the last state's.
    held = set()
    for raw in kept.values():
        kept_state = statecodec.state_from_dict(json.loads(raw)["state"])
        held |= {f.name for f in dataclasses.fields(kept_state) if getattr(kept_state, f.name)}
        if kept_state.after_rollback is not None and kept_state.after_rollback.signoffs:
            held.add("after_rollback.signoffs")
    every = {f.name for f in dataclasses.fields(state.CutoverState)} - {"chain"}
    assert held == every | {"after_rollback.signoffs"}


def test_a_command_with_a_checkpoint_parses_nothing_before_it(tmp_path, every_event, monkeypatch):
    book = write_book(tmp_path)
    write_every_kind(book)
    session(book).state()  # leaves the checkpoint
    path = journal_path(book)
    mark = json.loads(checkpoint_file(book).read_bytes())
    parsed: list[int] = []
    read = Chain.read

    def counted(self, data, *args, **kwargs):
        parsed.append(len(data))
        return read(self, data, *args, **kwargs)

    monkeypatch.setattr(Chain, "read", counted)
    s = session(book)
    got, warnings = s.state()
    assert s._checkpoint is not None and got.chain is None
    assert got.completed is not None and got.last_seq == mark["seq"]
    # The bytes before the checkpoint's line are hashed (a change is found), not parsed.
    assert sum(parsed) == path.stat().st_size - mark["offset"], parsed
    assert "does not match" not in " ".join(warnings)


def test_the_tail_is_followed_as_it_grows(tmp_path, every_event):
    book = write_book(tmp_path)
    write_every_kind(book, upto=10)
    session(book).state()
    s = session(book)
    assert s.state()[0].last_seq == 11 and s._checkpoint is not None
    s.journal.append("trigger.raised", trigger="oom", note="again")
    got, _ = s.state()
    assert got.last_seq == 12 and "oom" in got.raised and s._checkpoint is not None
    assert s.journal.tail_since(11)[0].seq == 12


def test_a_checkpoint_is_left_only_every_so_many_events(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "EVERY", 10)
    book = write_book(tmp_path)
    writer = Writer(book)
    writer.write(8)
    session(book).state()
    assert not checkpoint_file(book).exists()  # 8 events: not worth one
    writer.write(12)
    session(book).state()
    assert json.loads(checkpoint_file(book).read_bytes())["seq"] == 13
    writer.write(20)
    session(book).state()  # 8 past the last: the next one waits
    assert json.loads(checkpoint_file(book).read_bytes())["seq"] == 13


def test_a_rollback_never_writes_one(tmp_path, every_event):
    book = write_book(tmp_path)
    write_every_kind(book)
    s = session(book)
    with urgent.rollback():
        s.state()
    assert not checkpoint_file(book).exists()
    with s.journal.action_lock("advance to 10 %"):
        s.state()
    assert not checkpoint_file(book).exists()
    s.state()
    assert checkpoint_file(book).exists()


def test_a_checkpoint_that_cannot_be_written_is_no_failure(tmp_path, every_event):
    book = write_book(tmp_path)
    write_every_kind(book)
    checkpoint_file(book).mkdir()  # a folder in its place: the rename fails
    got, warnings = session(book).state()
    assert got.completed is not None and got.chain is None
    assert not any("checkpoint" in w for w in warnings)


def test_the_state_codec_keeps_types_and_refuses_what_is_not_the_state():
    with pytest.raises(statecodec.Undecodable):
        statecodec.state_from_dict({"x": 1})
    with pytest.raises(statecodec.Undecodable):
        statecodec.state_from_dict({"$c": "Path", "f": {}})
    with pytest.raises(statecodec.Undecodable):
        statecodec.state_from_dict({"$c": "CutoverState", "f": {"stage_id": "off"}})


def test_a_checkpoint_nested_too_deep_to_parse_is_ignored(tmp_path):
    """Nested brackets make json.loads (and the codec) recurse as deep as they go: such a
    file is ignored like any other bad one, not a crash of every command, a rollback's too."""
    book = write_book(tmp_path)
    write_every_kind(book)
    want, _ = full_state(book)
    checkpoint_file(book).write_bytes(b"[" * 200_000)
    got, _ = session(book).state()
    assert statecodec.state_to_dict(got) == want and got.chain is None
    with pytest.raises(statecodec.Undecodable):
        deep: dict = {"$t": []}
        for _ in range(5000):
            deep = {"$t": [deep]}
        statecodec.state_from_dict(deep)
