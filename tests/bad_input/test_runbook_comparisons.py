"""A comparison the runbook cannot mean — a baseline of a stage that does not exist or
cannot have been left yet, a row that is not a row, a histogram without its counts, a
margin below zero — is refused where it is written, not left to wait forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

RUNBOOK = """\
version = 1
title = "comparisons"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10

  [[stages.gates]]  # v2 against v1
  id = "v2_not_worse"
  query = "q"
  column = "rate"
  successes = "ok"
  trials = "total"
  row = { version = "v2" }
  against = { row = { version = "v1" } }
  op = ">="
  margin = 1

[[stages]]
id = "ramp"
percent = 50

  [[stages.gates]]  # success against canary
  id = "success_vs_canary"
  query = "q"
  column = "rate"
  against = { baseline = "canary" }
  op = ">="

  [[stages.gates]]  # no slowdown
  id = "no_slowdown"
  query = "q"
  distribution = { bucket = "bucket", count = "imports" }
  against = { baseline = "previous" }
  op = "<="
  confidence = 0.9

  [[stages.gates]]  # no new errors
  id = "no_new_errors"
  query = "q"
  new_rows = { key = "pattern" }
  against = { baseline = "canary" }
  op = "=="

[[triggers]]
id = "slower_than_canary"
query = "q"
distribution = { bucket = "bucket", count = "imports" }
against = { baseline = "canary" }
op = ">"
severity = "medium"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "q.sql").write_text("-- q\nSELECT 1 AS rate;\n", encoding="utf-8")
    path = tmp_path / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(write(tmp_path, text), shown_as="runbook.toml")
    return [str(p) for p in caught.value.problems]


def at(text: str, needle: str) -> str:
    """line:col where `needle` starts in `text` (it must be there once)."""
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def test_the_comparisons_load(tmp_path):
    book = runbook.load(write(tmp_path, RUNBOOK))
    slowdown = book.stage("ramp").gates[1].check
    assert slowdown.margin == 0.147 and slowdown.value == 0.147 and slowdown.confidence == 0.9
    assert book.triggers[0].check.value == 0.147  # fires beyond what the gate tolerates
    assert book.stage("ramp").gates[0].check.value == 0  # no margin: at least canary's


# (the text to replace, with what, where the problem is (a needle in the new text), what it says)
PLANTED = [
    (
        'baseline = "canary" }\n  op = ">="',
        'baseline = "canry" }\n  op = ">="',
        '"canry"',
        "unknown stage 'canry'; did you mean 'canary'?",
    ),
    (
        'baseline = "canary" }\n  op = ">="',
        'baseline = "ramp" }\n  op = ">="',
        '"ramp" }',
        "a gate can compare only with an earlier stage's exit; ramp's exit cannot exist "
        "the first time through ramp",
    ),
    (
        'against = { row = { version = "v1" } }',
        'against = { baseline = "previous" }',
        '"previous" }\n  op = ">="\n  margin',
        "",  # canary's previous is zero: fine
    ),
    ('row = { version = "v2" }', 'row = "v2"', '"v2"', "row must be a table like"),
    ('row = { version = "v2" }', "row = 0", "0\n  against", "row numbers start at 1"),
    ('row = { version = "v2" }', "row = {}", "{}", "row needs a column = value"),
    ('row = { version = "v2" }', "row = { version = [2] }", "[2]", "row: version must be"),
    ('row = { version = "v2" }', "row = 1.5", "1.5", "row must be a table like"),
    (
        'distribution = { bucket = "bucket", count = "imports" }\n  against',
        'distribution = { bucket = "bucket" }\n  against',
        'distribution = { bucket = "bucket" }',
        "distribution needs `count`",
    ),
    (
        'against = { baseline = "previous" }',
        "against = { row = 2 }",
        "{ row = 2 }",
        "distribution compares with a baseline, not another row",
    ),
    (
        'new_rows = { key = "pattern" }',
        'new_rows = { kee = "pattern" }',
        "kee",
        "unknown key 'kee' in new_rows; did you mean 'key'?",
    ),
    ("margin = 1", "margin = -1", "-1", "margin must be 0 or more"),
    ("margin = 1", "margin = nan", "nan", "margin must be a finite number, not nan"),
    ("margin = 1", "margin = inf", "inf", "margin must be a finite number, not inf"),
    ("margin = 1", "margin = 100", "100", "margin is in percentage points here"),
    ("margin = 1", "value = 95", "95", "value does not go with against"),
    (
        'op = "<="\n  confidence = 0.9',
        'op = "<="\n  margin = 1',
        "1\n\n  [[stages.gates]]  # no new",
        "margin bounds Cliff's δ",
    ),
    (
        'op = "<="\n  confidence = 0.9',
        'op = "<="\n  value = 0',
        "0\n\n  [[stages.gates]]  # no new",
        "value does not go with distribution",
    ),
    (
        'against = { row = { version = "v1" } }',
        'against = { row = { version = "v1" }, baseline = "zero" }',
        '{ row = { version = "v1" }, baseline',
        "against takes one of `row`",
    ),
    (
        'against = { row = { version = "v1" } }',
        "against = {}",
        "{}",
        "against takes one of `row`",
    ),
    (
        'against = { row = { version = "v1" } }',
        'against = { baselne = "zero" }',
        "baselne",
        "unknown key 'baselne' in against; did you mean 'baseline'?",
    ),
    (
        'against = { row = { version = "v1" } }',
        'against = { row = { version = "v2" } }',
        '{ row = { version = "v2" } }',
        "against.row picks the same row as row",
    ),
    (
        'new_rows = { key = "pattern" }',
        'new_rows = { key = "pattern" }\n  column = "rate"',
        '"rate"\n  against = { baseline = "canary" }\n  op = "=="',
        "column does not go with new_rows",
    ),
    (
        'against = { baseline = "canary" }\nop = ">"',
        'against = { baseline = "canaryy" }\nop = ">"',
        '"canaryy"',
        "unknown stage 'canaryy'",
    ),
]


@pytest.mark.parametrize(("old", "new", "where", "says"), PLANTED, ids=lambda x: x[:30])
def test_each_mistake_is_named_where_it_is_written(tmp_path, old, new, where, says):
    assert RUNBOOK.count(old) == 1, old
    text = RUNBOOK.replace(old, new)
    if not says:
        runbook.load(write(tmp_path, text))
        return
    found = problems_of(tmp_path, text)
    position = at(text, where)
    assert any(p.startswith(f"runbook.toml:{position}: ") and says in p for p in found), (
        position,
        found,
    )


def test_previous_in_the_first_stage_is_refused(tmp_path):
    text = RUNBOOK.replace(
        'id = "zero"\npercent = 0\n',
        'id = "zero"\npercent = 0\n\n  [[stages.gates]]\n  id = "g"\n  query = "q"\n'
        '  column = "rate"\n  against = { baseline = "previous" }\n  op = ">="\n',
    )
    where = at(text, '"previous" }\n  op = ">="\n\n[[stages]]')
    found = problems_of(tmp_path, text)
    assert found == [f"runbook.toml:{where}: the first stage has no previous stage"]


def test_a_plain_comparison_still_needs_its_value(tmp_path):
    text = RUNBOOK.replace('  against = { baseline = "canary" }\n  op = ">="\n', '  op = ">="\n')
    assert any("needs `value`" in p for p in problems_of(tmp_path, text))


def test_a_distribution_or_a_set_needs_a_baseline(tmp_path):
    text = RUNBOOK.replace(
        '  new_rows = { key = "pattern" }\n  against = { baseline = "canary" }\n',
        '  new_rows = { key = "pattern" }\n',
    )
    assert any(
        'new_rows compares with a baseline: add against = { baseline = "previous" }' in p
        for p in problems_of(tmp_path, text)
    )


def test_margin_without_against_is_refused(tmp_path):
    text = RUNBOOK.replace(
        'against = { baseline = "canary" }\n  op = ">="\n',
        'op = ">="\n  value = 95\n  margin = 1\n',
    )
    found = problems_of(tmp_path, text)
    assert any("margin goes with against" in p for p in found), found


def test_row_with_row_count_is_refused(tmp_path):
    old = '  column = "rate"\n  against = { baseline = "canary" }\n  op = ">="\n'
    assert RUNBOOK.count(old) == 1
    text = RUNBOOK.replace(old, '  row_count = true\n  row = 2\n  op = ">="\n  value = 1\n')
    found = problems_of(tmp_path, text)
    assert any("row picks one row; row_count counts them all" in p for p in found), found
