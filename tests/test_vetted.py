"""The memo of vetted texts (vetted.py): a second run skips parsing what the first vetted,
and nothing it holds ever lets a harmful query through a judgement that did not make it."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.runbook import jsonpaths, sqlfile, sqlguard, vetted
from cutover.runbook.vetted import FILE, Memo

REPO = Path(__file__).resolve().parents[1]
HARMFUL = "SELECT dblink_exec('dbname=x', 'DELETE FROM user_profiles')"
PLAIN = "SELECT count(*) AS n FROM user_profiles WHERE updated_at > now() - interval '1 hour'"


@pytest.fixture
def memo(tmp_path, monkeypatch) -> Memo:
    """The process's memo, in a folder of this test's own, with nothing judged in memory."""
    fresh = Memo(tmp_path / "cache")
    monkeypatch.setattr(sqlguard, "MEMO", fresh)
    monkeypatch.setattr(jsonpaths, "MEMO", fresh)
    monkeypatch.setattr(sqlfile, "MEMO", fresh)
    for cached in (sqlguard.refusal, sqlguard.calls, sqlguard._parse, sqlfile._split_once):
        cached.cache_clear()
    yield fresh
    for cached in (sqlguard.refusal, sqlguard.calls, sqlguard._parse, sqlfile._split_once):
        cached.cache_clear()


def _forget_in_memory() -> None:
    for cached in (sqlguard.refusal, sqlguard.calls, sqlguard._parse):
        cached.cache_clear()


def test_a_second_run_loads_the_shipped_runbook_without_parsing_it_again(tmp_path):
    # The point of the memo: `check` and the console's first paint stop paying for pglast and
    # jsonpath (imports and parses) when the runbook's texts have not changed.
    probe = (
        "import sys\n"
        "from cutover.runbook import loader as runbook, sqlguard\n"
        f"book = runbook.load({str(REPO / 'runbook.toml')!r})\n"
        "for q in book.queries.values():\n"
        "    if q.kind == 'sql':\n"
        "        assert sqlguard.refusal(q.sql) is None\n"
        "        sqlguard.calls(q.sql)\n"
        "print(sorted(m for m in ('pglast', 'jsonpath') if m in sys.modules))\n"
    )
    env = {**os.environ, "CUTOVER_CACHE_DIR": str(tmp_path / "cache")}

    def imported() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().replace("'", '"'))

    # The first run judges every text; the shipped JSONPaths all have everyday shapes
    # (jsonpaths.plain()), which need no library.
    assert imported() == ["pglast"]
    assert imported() == []  # the second knows them all


def test_the_calls_a_query_makes_are_remembered_as_parsed(memo):
    text = "SELECT f(1) + 2 FROM public.g() AS x"
    parsed = sqlguard.calls(text)
    assert sqlguard.refusal(text) is None  # kept: it passed
    _forget_in_memory()
    again = Memo(memo.folder)  # another process, reading the file
    sqlguard.MEMO = again
    try:
        assert sqlguard.calls(text) == parsed
        assert [c.shown for c in parsed] == ["f", "operator +", "public.g"]
    finally:
        sqlguard.MEMO = memo


def test_a_refusal_is_never_remembered(memo):
    first = sqlguard.refusal(HARMFUL)
    assert first is not None and "dblink_exec" in first.reason
    assert memo.recall("sql", HARMFUL) is None
    _forget_in_memory()
    assert sqlguard.refusal(HARMFUL) == first


def test_changed_rules_judge_every_text_again(memo, monkeypatch):
    assert sqlguard.refusal(PLAIN) is None
    assert memo.recall("sql", PLAIN) is not None
    # The guard's source changed (a new upgrade, a new rule): its fingerprint differs, and
    # what the old rules let through is not trusted.
    monkeypatch.setattr(vetted, "fingerprint", lambda: "other rules")
    later = Memo(memo.folder)
    assert later.recall("sql", PLAIN) is None


def test_a_garbled_or_unwritable_memo_is_ignored_and_verdicts_stay_right(memo, tmp_path):
    memo.folder.mkdir(parents=True)
    (memo.folder / FILE).write_bytes(b"\x00{not json")
    assert sqlguard.refusal(HARMFUL) is not None
    assert sqlguard.refusal(PLAIN) is None
    assert json.loads((memo.folder / FILE).read_text())["vetted"]  # rewritten whole

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    nowhere = Memo(blocked / "cache")
    sqlguard.MEMO = nowhere
    try:
        _forget_in_memory()
        assert sqlguard.refusal(PLAIN) is None  # no error: a cache that cannot be written
        assert sqlguard.refusal(HARMFUL) is not None
    finally:
        sqlguard.MEMO = memo


def test_the_memo_is_for_its_owner_only(memo):
    assert jsonpaths.jsonpath_problem("$.values[-2:]") is None  # a slice: the library's
    assert memo.recall("jsonpath", "$.values[-2:]") is True
    assert stat.S_IMODE(memo.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((memo.folder / FILE).stat().st_mode) == 0o600


def test_a_bad_jsonpath_is_never_remembered(memo):
    assert jsonpaths.jsonpath_problem("$.values[") is not None
    assert memo.recall("jsonpath", "$.values[") is None


def test_validate_judges_afresh_whatever_the_memo_says(tmp_path):
    # A memo vouching for a harmful text (written by hand, or by a bug) does not get it past
    # `validate`, which never consults it.
    (tmp_path / "q.sql").write_text(HARMFUL + ";\n")
    (tmp_path / "runbook.toml").write_text(
        'version = 1\ntitle = "t"\n\n[flag]\nkind = "file"\npath = "flag"\n\n'
        '[queries.q]\nfile = "q.sql"\n\n[[stages]]\nid = "zero"\npercent = 0\n'
    )
    cache = tmp_path / "cache"
    env = {**os.environ, "CUTOVER_CACHE_DIR": str(cache)}
    env.pop("CUTOVER_DATABASE_URL", None)
    poison = (
        "from cutover.runbook.vetted import Memo\n"
        f"Memo(__import__('pathlib').Path({str(cache)!r})).keep('sql', {HARMFUL!r}, [])\n"
    )
    subprocess.run([sys.executable, "-c", poison], env=env, check=True, timeout=60)
    assert (cache / FILE).exists()
    book = str(tmp_path / "runbook.toml")
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", book, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "dblink_exec" in done.stdout + done.stderr


def test_a_memo_others_can_write_or_a_misshapen_entry_is_not_trusted(memo):
    memo.keep("sql", HARMFUL, [])  # as if an earlier run had let it through
    memo.keep("sql", PLAIN, 1)  # not what keep() writes for a query
    path = memo.folder / FILE
    _forget_in_memory()
    sqlguard.MEMO = Memo(memo.folder)
    try:
        assert sqlguard.refusal(PLAIN) is None  # judged afresh: no traceback, the right answer
        assert sqlguard.calls(PLAIN)  # count(), now(), -, >: parsed, not taken from the memo
        os.chmod(path, 0o666)  # anyone may have written it now
        _forget_in_memory()
        sqlguard.MEMO = Memo(memo.folder)
        assert sqlguard.refusal(HARMFUL) is not None
    finally:
        sqlguard.MEMO = memo


def test_what_a_batch_vets_is_written_once_at_its_end(memo):
    other = "SELECT 1 AS one"
    with memo.batch():
        assert sqlguard.refusal(PLAIN) is None
        assert sqlguard.refusal(other) is None
        assert not (memo.folder / FILE).exists()  # not yet: once, when the batch ends
    kept = json.loads((memo.folder / FILE).read_text())["vetted"]
    assert len(kept) == 2
    _forget_in_memory()
    later = Memo(memo.folder)  # the next process knows both
    assert later.recall("sql", PLAIN) is not None and later.recall("sql", other) is not None


def test_loading_a_runbook_writes_the_memo_once(memo, monkeypatch):
    # Rewriting the file for each text vetted was ~5 ms apiece: 31 rewrites on the shipped
    # runbook, 140-160 ms of a first `check` after an edit.
    from cutover.runbook import loader

    monkeypatch.setattr(loader, "MEMO", memo)
    writes = []
    write = Memo._write

    def counted(self, entries) -> None:
        writes.append(1)
        write(self, entries)

    monkeypatch.setattr(Memo, "_write", counted)
    book = loader.load(REPO / "runbook.toml")
    assert len(writes) == 1
    later = Memo(memo.folder)  # the next process: every text is in that one write
    assert all(later.recall("sql", q.sql) for q in book.queries.values() if q.kind == "sql")


SPLIT = """-- Imports, last hour
-- how many started
SELECT count(*) AS started FROM imports WHERE started_at > now() - interval '1 hour';

/* Failures */
SELECT count(*) AS failed
  FROM imports WHERE status = 'failed'
"""


def test_a_file_split_on_an_earlier_run_is_not_tokenized_again(memo, monkeypatch):
    split = sqlfile._split_once(SPLIT)
    assert [s.title for s in split] == ["Imports, last hour", "Failures"]
    sqlfile._split_once.cache_clear()
    monkeypatch.setattr(sqlfile, "MEMO", Memo(memo.folder))  # the next process

    def tokenize(source):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(sqlfile, "tokenize", tokenize)
    assert sqlfile._split_once(SPLIT) == split  # texts, titles, help, lines, columns


def test_a_remembered_split_that_is_not_the_file_s_is_split_afresh(memo, monkeypatch):
    split = sqlfile._split_once(SPLIT)
    # As if someone wrote the memo by hand: a text the file does not hold at that place.
    memo.keep("split", SPLIT, [["SELECT pg_terminate_backend(1)", None, "", 3, 1]])
    sqlfile._split_once.cache_clear()
    monkeypatch.setattr(sqlfile, "MEMO", Memo(memo.folder))
    assert sqlfile._split_once(SPLIT) == split


def test_a_runbook_s_toml_read_on_an_earlier_run_is_not_parsed_again(memo, monkeypatch):
    # tomllib is pure Python: ~8 ms of every start for the shipped runbook.
    from cutover.runbook import loader

    monkeypatch.setattr(loader, "MEMO", memo)
    book = loader.load(REPO / "runbook.toml")
    for module in (loader, sqlguard, jsonpaths, sqlfile):  # the next process
        monkeypatch.setattr(module, "MEMO", Memo(memo.folder))

    def loads(text):
        raise AssertionError("parsed again")

    monkeypatch.setattr(loader.tomllib, "loads", loads)
    assert loader.load(REPO / "runbook.toml") == book
    # Each load reads objects of its own: what one changes, the next never sees.
    first = loader.parsed_toml((REPO / "runbook.toml").read_text(encoding="utf-8"))
    first["title"] = "changed"
    assert loader.load(REPO / "runbook.toml").title == book.title


def test_toml_that_json_cannot_hold_is_parsed_afresh_each_time(memo, monkeypatch):
    from cutover.runbook import loader

    monkeypatch.setattr(loader, "MEMO", memo)
    when, nan, plain = "when = 1979-05-27T07:32:00Z", "x = nan", "plain = 1"
    assert loader.parsed_toml(when)["when"] == datetime(1979, 5, 27, 7, 32, tzinfo=UTC)
    assert math.isnan(loader.parsed_toml(nan)["x"])
    assert loader.parsed_toml(plain) == {"plain": 1}
    assert memo.recall("toml", when) is None and memo.recall("toml", nan) is None
    assert memo.recall("toml", plain) == {"kind": "toml", "json": '{"plain": 1}'}


def test_the_memo_keeps_only_the_newest_runbooks_toml(memo, monkeypatch):
    # Every edit of a runbook is a new text; the memo is read whole at every start.
    from cutover.runbook import loader

    monkeypatch.setattr(loader, "MEMO", memo)
    texts = [f"title = 'edit {n}'" for n in range(loader.TOML_KEPT + 3)]
    for text in texts:
        loader.parsed_toml(text)
    memo.keep("sql", PLAIN, {"calls": [], "limit": None})  # other kinds are left alone
    again = Memo(memo.folder)
    assert [bool(again.recall("toml", t)) for t in texts] == [False] * 3 + [True] * loader.TOML_KEPT
    assert again.recall("sql", PLAIN)
