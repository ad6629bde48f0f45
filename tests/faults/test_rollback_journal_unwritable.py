"""A rollback goes ahead when the journal cannot be written. Once, with the journal immutable
(or the disk full), `cutover rollback` exited 2 ("Operation not permitted") and the flag
stayed at 10 %. Now its records are spilled (beside the journal, else the state folder, else
the terminal), the flag moves and is verified, and the first command that can write the
journal again folds them in, chained and marked as recovered. Advance stays refused."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cutover.record.journal import Journal
from moves_world import (
    KEY,
    PLAIN_STAGES,
    PROJECT,
    cli,
    environ,
    fake_vercel,
    journal,
    write_runbook,
)


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    if not _chattr("+i", path):
        pytest.skip("needs chattr +i (root on a filesystem with attributes)")
    try:
        yield
    finally:
        _chattr("-i", path)


def test_rollback_with_an_immutable_journal_moves_the_flag_and_is_folded_in_later(tmp_path):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        path = tmp_path / "journal.jsonl"
        before = path.read_bytes()
        with immutable(path):
            rolled = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
            refused = cli(book, env, "advance", "--confirm", "10")
            assert path.read_bytes() == before
            assert fake.live_value(PROJECT, KEY) == "0"
        status = cli(book, env, "status", "--json")

    assert rolled.code == 0, rolled.output
    assert "the journal cannot be written" in rolled.output
    assert str(path) + ".spill" in rolled.output
    assert "rollback to 0 % verified" in rolled.stdout
    assert refused.code != 0  # everything else stays refused
    assert "folded rollback.intent" in status.stderr and "folded rollback.done" in status.stderr
    events = journal(book)
    assert [e["kind"] for e in events][-2:] == ["rollback.intent", "rollback.done"]
    assert all(e["recovered"] is True and e["spill_id"] for e in events[-2:])
    assert not (tmp_path / "journal.jsonl.spill").exists()
    assert Journal(path, actor="t").verify().ok
    assert '"stage": "off"' in status.stdout


def test_with_the_journals_folder_immutable_the_spill_goes_to_the_state_folder(
    tmp_path, tmp_path_factory
):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    state = tmp_path_factory.mktemp("state")  # outside the folder made immutable
    with fake_vercel() as fake:
        env = {**environ(fake), "XDG_STATE_HOME": str(state)}
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        path = tmp_path / "journal.jsonl"
        with immutable(path), immutable(tmp_path):
            rolled = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
            assert fake.live_value(PROJECT, KEY) == "0"
        spilled = list((state / "cutover").glob("spill-*.jsonl"))
        assert spilled and "rollback.done" in spilled[0].read_text()
        cli(book, env, "status")
    assert rolled.code == 0, rolled.output
    assert [e["kind"] for e in journal(book)][-1] == "rollback.done"
    assert not spilled[0].exists()


def test_with_nowhere_to_spill_the_record_is_the_terminals_and_the_flag_still_moves(
    tmp_path, tmp_path_factory
):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    state = tmp_path_factory.mktemp("state")
    with fake_vercel() as fake:
        env = {**environ(fake), "XDG_STATE_HOME": str(state)}
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        path = tmp_path / "journal.jsonl"
        with immutable(path), immutable(tmp_path), immutable(state):
            rolled = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
            live = fake.live_value(PROJECT, KEY)
    assert rolled.code == 0, rolled.output
    assert live == "0"
    assert "kept in nowhere on disk (this line is the record)" in rolled.stdout
    assert (
        '"kind": "rollback.intent"' in rolled.stdout and '"kind": "rollback.done"' in rolled.stdout
    )
