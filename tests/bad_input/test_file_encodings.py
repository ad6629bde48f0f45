"""Runbooks and .sql files as editors really save them: with a byte-order mark, or with a
latin-1 byte in a comment. The first loads; the second is named at its line and column."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

RUNBOOK = """\
version = 1
title = "Umstellung"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0
"""
SQL = "-- Erfolgsquote\nSELECT 1 AS one;\n"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(path)
    return [str(p) for p in caught.value.problems]


def test_a_runbook_saved_with_a_byte_order_mark_loads(tmp_path: Path):
    (tmp_path / "q.sql").write_text(SQL, encoding="utf-8")
    path = tmp_path / "runbook.toml"
    path.write_bytes(codecs.BOM_UTF8 + RUNBOOK.encode("utf-8"))
    book = runbook.load(path)
    assert book.title == "Umstellung"


def test_a_runbook_with_a_byte_order_mark_still_names_its_mistakes_at_the_right_place(
    tmp_path: Path,
):
    (tmp_path / "q.sql").write_text(SQL, encoding="utf-8")
    path = tmp_path / "runbook.toml"
    path.write_bytes(codecs.BOM_UTF8 + RUNBOOK.replace("percent = 0", "percent = 200").encode())
    assert problems_of(path) == [f"{path}:13:11: percent 200 is outside 0–100"]


def test_a_latin1_byte_in_the_runbook_is_named_at_its_line_and_column(tmp_path: Path):
    (tmp_path / "q.sql").write_text(SQL, encoding="utf-8")
    path = tmp_path / "runbook.toml"
    text = RUNBOOK.replace('title = "Umstellung"', 'title = "Übergang"')
    path.write_bytes(text.encode("latin-1"))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:2:10: cannot read the runbook: byte 0xdc is not UTF-8")
    assert "'Ü'" in problem
    assert "position" not in problem  # no byte offset


def test_a_latin1_byte_in_a_sql_file_is_named_at_its_line_and_column(tmp_path: Path):
    (tmp_path / "q.sql").write_bytes("-- Erfolgsquote\n-- für alle\nSELECT 1;\n".encode("latin-1"))
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK, encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{tmp_path}/q.sql:2:5: cannot read this query file: byte 0xfc")
    assert "position" not in problem


def test_the_column_of_a_bad_byte_counts_characters_not_bytes(tmp_path: Path):
    raw = "-- → Übergang\n".encode() + "-- ß".encode("latin-1") + b"\nSELECT 1;\n"
    (tmp_path / "q.sql").write_bytes(raw)
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK, encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{tmp_path}/q.sql:2:4: ")
