"""sqlguard.limited: where a statement's own LIMIT / FETCH FIRST is written, read from
Postgres's parse tree; remembered with the calls in the vetted memo, so a warm `check` asks
it without loading the parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cutover.runbook import sqlguard
from cutover.runbook.vetted import Memo


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("SELECT id FROM t LIMIT 5", "LIMIT"),
        ("SELECT id FROM t ORDER BY id OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY", "FETCH"),
        ("SELECT id FROM t ORDER BY id FETCH NEXT ROW WITH TIES", "FETCH"),
        ("SELECT 1 UNION ALL SELECT 2 ORDER BY 1 limit 1", "limit"),
        ("(SELECT 1 LIMIT 1) UNION (SELECT 2 LIMIT 1) LIMIT 2", "LIMIT 2"),
        ("((SELECT id FROM t LIMIT 7))", "LIMIT"),
        ("WITH c AS (SELECT id FROM t LIMIT 5) SELECT * FROM c LIMIT $1", "LIMIT $1"),
        ("SELECT (SELECT max(id) FROM t LIMIT 1) FROM u FETCH FIRST ROW ONLY", "FETCH"),
        ("VALUES (1), (2) LIMIT 1", "LIMIT"),
    ],
)
def test_the_statements_own_limit_is_found_where_it_is_written(text: str, written: str):
    assert sqlguard.limited(text) == text.index(written)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT id FROM t",
        "SELECT id FROM t OFFSET 10",
        "SELECT id FROM t LIMIT ALL",
        "SELECT id FROM t LIMIT NULL",
        "(SELECT 1 LIMIT 1) UNION SELECT 2",
        "SELECT * FROM (SELECT id FROM t LIMIT 5) s",
        "WITH c AS (SELECT id FROM t LIMIT 5) SELECT * FROM c",
        "SELECT id FROM t WHERE id IN (SELECT id FROM u LIMIT 3)",
        'SELECT "limit" FROM t',
        "SELECT 'LIMIT 5' FROM t -- LIMIT 5",
        "DELETE FROM t",
    ],
)
def test_a_statement_without_a_limit_of_its_own_has_none(text: str):
    assert sqlguard.limited(text) is None


def test_limited_is_remembered_and_a_warm_run_never_imports_the_parser(tmp_path):
    probe = (
        "import sys\n"
        "from cutover.runbook import sqlguard\n"
        "text = 'SELECT id FROM t ORDER BY id LIMIT 10'\n"
        "assert sqlguard.refusal(text) is None\n"
        "print(sqlguard.limited(text), 'pglast' in sys.modules)\n"
    )
    env = {**os.environ, "CUTOVER_CACHE_DIR": str(tmp_path / "cache")}

    def ran() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert ran() == "29 True"  # judged, parsed, remembered
    assert ran() == "29 False"  # known: no parser


def test_an_entry_in_the_old_shape_is_judged_afresh(tmp_path, monkeypatch):
    text = "SELECT k.f FROM k LIMIT 1"
    memo = Memo(tmp_path / "cache")
    memo.keep("sql", text, [[["f"], 7, False]])  # what an older guard kept: calls only
    monkeypatch.setattr(sqlguard, "MEMO", memo)
    for cached in (sqlguard.refusal, sqlguard.calls, sqlguard.limited, sqlguard._parse):
        cached.cache_clear()
    try:
        assert [c.shown for c in sqlguard.calls(text)] == ["attribute notation .f"]
        assert sqlguard.limited(text) == text.index("LIMIT")
        assert sqlguard.refusal(text) is None
        kept = json.loads((memo.folder / "vetted.json").read_text())["vetted"]
        assert {"calls": [["attribute", ["f"], 9, None]], "limit": 18} in kept.values()
    finally:
        for cached in (sqlguard.refusal, sqlguard.calls, sqlguard.limited, sqlguard._parse):
            cached.cache_clear()
