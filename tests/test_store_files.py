"""The state store (#18): `[store]` is read and checked, and the files store is what every
reader and writer of the record goes through when the runbook names none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.judge.session import Session
from cutover.record.store.files import FilesStore
from cutover.runbook import loader as runbook
from cutover.runbook.load_store import cutover_id
from cutover.runbook.problems import ProblemsFound
from cutover.sources.results import QueryResult

BOOK = """\
version = 1
title = "Billing: v1 → v2"

[database]
dsn_env = "CUTOVER_DATABASE_URL"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "ten"
percent = 10
"""


def write(tmp_path: Path, store: str = "") -> Path:
    (tmp_path / "q.sql").write_text("SELECT 1 AS one;\n")
    path = tmp_path / "runbook.toml"
    path.write_text(BOOK + store)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(path)
    return [str(p) for p in caught.value.problems]


def test_without_a_store_table_the_record_is_files_beside_the_journal(tmp_path):
    book = runbook.load(write(tmp_path))
    assert book.store.kind == "files"
    session = Session(book, {})
    assert isinstance(session.store, FilesStore)
    assert session.journal is session.store.journal
    at = datetime(2026, 1, 1, tzinfo=UTC)
    session.journal.append("note", note="hello")
    session.store.mark_seen("ops", at)
    assert session.store.last_seen("ops") == at
    results = {"q": QueryResult("q", ("one",), ((1,),), at)}
    assert session.store.take_snapshot("ten", 1, "exit", results, at)
    assert not session.store.take_snapshot("ten", 1, "exit", results, at)  # first one wins
    assert session.store.snapshot_labels("ten", 1) == {"exit"}
    assert session.store.baseline("ten") is not None
    assert session.store.read_snapshot("ten", 1, "exit").results["q"].rows == ((1,),)
    assert session.store.read_snapshot("ten", 1, "entry") is None
    # Where the files store keeps them, as before the store existed.
    folder = tmp_path / ".cutover"
    assert (folder / "journal.jsonl").is_file() and (folder / "journal.seen.json").is_file()
    assert list((folder / "journal.snapshots").glob("ten.*.exit.json"))


def test_a_postgres_store_is_read_with_its_defaults(tmp_path):
    book = runbook.load(write(tmp_path, '\n[store]\nkind = "postgres"\n'))
    assert (book.store.kind, book.store.dsn_env, book.store.schema) == (
        "postgres",
        "CUTOVER_STATE_URL",
        "cutover",
    )
    assert book.store.cutover == cutover_id("Billing: v1 → v2") == "billing-v1-v2"


def test_store_mistakes_are_named_where_they_are(tmp_path):
    found = problems_of(
        write(
            tmp_path,
            '\n[store]\nkind = "postgres"\ndsn_env = "CUTOVER_DATABASE_URL"\n'
            'schema = "Cut Over"\ncutover = "Not An Id"\nbogus = 1\n',
        )
    )
    text = "\n".join(found)
    assert "writable role of its own" in text and "CUTOVER_DATABASE_URL" in text
    assert "schema must be a plain lowercase name" in text
    assert "cutover must be lowercase" in text
    assert "bogus" in text
    assert all("runbook.toml:" in line for line in found)
    files = problems_of(write(tmp_path, '\n[store]\nkind = "files"\ndsn_env = "X_URL"\n'))
    assert any('applies to kind = "postgres" only' in p for p in files)
    unknown = problems_of(write(tmp_path, '\n[store]\nkind = "sqlite"\n'))
    assert any("store kind 'sqlite' is not known" in p for p in unknown)
