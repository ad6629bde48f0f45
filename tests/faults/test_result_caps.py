"""A huge result never reaches the console, `check` or `--json` whole: rows are capped where
they are fetched, cells are capped, and the output of `check` stays bounded and inert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cutover.runbook.model import Database, Query
from cutover.sources.caps import MAX_CELL_CHARS, MAX_ROWS
from cutover.sources.db import QueryRunner

RUNBOOK = """\
version = 1
title = "caps"

[database]
dsn_env = "TEST_DSN"
statement_timeout = "20s"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag"

[queries.rate]
title = "Rate"
file = "rate.sql"
refresh = "30s"

[[stages]]
id = "prep"
title = "Prerequisites"
percent = 0

  [[stages.gates]]
  id = "rate_ok"
  query = "rate"
  column = "rate"
  op = ">="
  value = 95
"""


def query(sql: str, query_id: str = "q") -> Query:
    return Query(query_id, query_id, Path("q.sql"), None, 30, sql=sql)


def runner(dsn: str) -> QueryRunner:
    return QueryRunner(Database(dsn_env="TEST_DSN", statement_timeout_s=20), dsn)


async def test_a_million_row_query_brings_back_the_first_thousand_and_says_there_are_more(
    empty_dsn,
):
    db = runner(empty_dsn)
    try:
        result = await db.run(query("SELECT g FROM generate_series(1, 1000000) AS g"))
    finally:
        await db.aclose()
    assert result.ok, result.error
    assert len(result.rows) == MAX_ROWS and result.truncated
    assert result.rows[0] == (1,) and result.rows[-1] == (MAX_ROWS,)


async def test_a_result_of_exactly_the_cap_is_whole(empty_dsn):
    db = runner(empty_dsn)
    try:
        whole = await db.run(query(f"SELECT g FROM generate_series(1, {MAX_ROWS}) AS g"))
        one = await db.run(query("SELECT 1 AS one"))
        none = await db.run(query("SELECT 1 AS one WHERE false"))
    finally:
        await db.aclose()
    assert len(whole.rows) == MAX_ROWS and not whole.truncated
    assert one.rows == ((1,),) and not one.truncated
    assert none.rows == () and none.columns == ("one",) and not none.truncated


async def test_a_ten_megabyte_cell_is_cut_where_it_is_fetched(empty_dsn):
    db = runner(empty_dsn)
    try:
        result = await db.run(
            query(
                "SELECT repeat('x', 10000000) AS big, decode(repeat('ab', 3000000), 'hex') AS "
                "blob, array_fill(7, ARRAY[100000]) AS many, 98.5::float8 AS rate, 'ok' AS small"
            )
        )
    finally:
        await db.aclose()
    assert result.ok, result.error
    big, blob, many, rate, small = result.rows[0]
    assert big.endswith("… (10,000,000 chars)") and len(big) < MAX_CELL_CHARS + 40
    assert blob.endswith("… (3,000,000 bytes)") and len(blob) < 4 * MAX_CELL_CHARS + 40
    assert many.endswith("… (100,000 items)") and len(many) < MAX_CELL_CHARS + 40
    assert (rate, small) == (98.5, "ok")  # what gates read is untouched


def check_runbook(folder: Path, sql: str) -> Path:
    (folder / "rate.sql").write_text(f"-- Rate\n{sql}\n")
    (folder / "flag").write_text("0\n")
    path = folder / "runbook.toml"
    path.write_text(RUNBOOK)
    return path


def check(path: Path, dsn: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(path), "check", *args],
        env={"TEST_DSN": dsn, "USER": "ops", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
    )


def test_check_prints_a_bounded_line_for_a_ten_megabyte_error(tmp_path, empty_dsn):
    # Postgres quotes the value it could not convert: a 10 MB string in the error message.
    path = check_runbook(tmp_path, "SELECT repeat('9x', 5000000)::int AS rate;")
    text = check(path, empty_dsn)
    assert text.returncode == 3, text.stdout + text.stderr
    assert "rate_ok" in text.stdout and "invalid input syntax" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) < 2 * MAX_CELL_CHARS + 200
    as_json = check(path, empty_dsn, "--json")
    assert len(as_json.stdout) < 3 * MAX_CELL_CHARS + 2000
    reason = json.loads(as_json.stdout)["gates"][0]["reason"]
    assert "invalid input syntax" in reason and reason.endswith("chars)")


def test_check_never_prints_a_raw_control_character(tmp_path, empty_dsn):
    # An error that quotes a value holding OSC 52 (clipboard write) and a bidi override.
    sql = "SELECT (E'\\x1b]52;c;aGk=\\x07 \\u202e \\u009b2J')::int AS rate;"
    path = check_runbook(tmp_path, sql)
    for args in ((), ("--json",)):
        done = check(path, empty_dsn, *args)
        assert "invalid input syntax" in done.stdout, done.stdout + done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert "\u202e" not in done.stdout and "\x9b" not in done.stdout
    assert "^[]52;c;aGk=^G" in check(path, empty_dsn).stdout


async def test_a_result_without_columns_is_capped_too(empty_dsn):
    db = runner(empty_dsn)
    try:
        result = await db.run(query("SELECT FROM generate_series(1, 5000)"))
    finally:
        await db.aclose()
    assert result.ok, result.error
    assert result.columns == () and len(result.rows) == MAX_ROWS and result.truncated
