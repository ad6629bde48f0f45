"""The format's additions said wrong — a reducer that is not one, an expression that does not
parse or reads what it may not, a gate set nobody defined, a trigger scoped to a stage that
does not exist, an escalation downwards, a trend without its slope, a set comparison over a
query cut by a LIMIT — are refused where they are written, each at its file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

RUNBOOK = """\
version = 1
title = "additions"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[queries.listed]
file = "listed.sql"

[queries.ep]
kind = "http"
url = "http://127.0.0.1:9/metrics"
columns = { peak = { path = "$[*].value", reduce = "max" }, n = { path = "$", reduce = "count" } }

[queries.share]
kind = "derived"
from = ["q", "ep"]
columns = { pct = "100 * q.rate / (q.rate + ep.peak)" }

[gatesets.steady]
title = "the bar"

  [[gatesets.steady.gates]]
  id = "rate_ok"
  query = "q"
  column = "rate"
  op = ">="
  value = 95

  [[gatesets.steady.gates]]
  id = "no_new"
  query = "q"
  new_rows = { key = "rate" }
  against = { baseline = "previous" }
  op = "=="

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10
use = ["steady"]
auto_rollback = ["slow"]

  [[stages.gates]]
  id = "share_ok"
  query = "share"
  column = "pct"
  op = ">="
  value = 5

[[stages]]
id = "full"
percent = 100
use = ["steady"]

  [[stages.gates]]
  id = "rate_ok"
  query = "q"
  column = "rate"
  op = ">="
  value = 99

[[triggers]]
id = "slow"
query = "q"
column = "rate"
op = "<"
value = 90
severity = "medium"
stages = ["canary"]
escalate = { after = "6h", severity = "critical" }

[[triggers]]
id = "rising"
query = "ep"
column = "peak"
trend = { over = "12h", op = ">", slope = 0 }
severity = "medium"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "q.sql").write_text("-- q\nSELECT 1 AS rate;\n", encoding="utf-8")
    (tmp_path / "listed.sql").write_text(
        "-- listed\nSELECT 1 AS rate ORDER BY 1 LIMIT 5;\n", encoding="utf-8"
    )
    path = tmp_path / "runbook.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(write(tmp_path, text), shown_as="runbook.toml")
    return [str(p) for p in caught.value.problems]


def at(text: str, needle: str, shift: int = 0) -> str:
    """line:col where `needle` starts in `text` (it must be there once), `shift` further."""
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle) + shift]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def test_the_additions_load(tmp_path):
    book = runbook.load(write(tmp_path, RUNBOOK))
    canary, full = book.stage("canary"), book.stage("full")
    assert [g.id for g in canary.gates] == ["rate_ok", "no_new", "share_ok"]
    assert canary.use == ("steady",)
    # the stage's own gate of the set's id wins, in the set's place
    assert [g.id for g in full.gates] == ["rate_ok", "no_new"]
    assert full.gates[0].check.value == 99 and canary.gates[0].check.value == 95
    assert canary.gates[0].where == ("gatesets", "steady", "gates", 0)
    slow, rising = book.triggers
    assert slow.stages == ("canary",) and slow.live_in("canary") and not slow.live_in("full")
    assert (slow.escalate.after_s, slow.escalate.severity) == (6 * 3600, "critical")
    assert (rising.check.trend.over_s, rising.check.op, rising.check.value) == (43200, ">", 0)
    assert book.queries["ep"].reduce == {"peak": "max", "n": "count"}
    share = book.queries["share"]
    assert share.derived_from == ("q", "ep") and share.refresh_s == 30
    assert share.expressions["pct"].names == (("q", "rate"), ("ep", "peak"))


# (the text to replace, with what, where the problem is (a needle in the new text and how
# far into it), what it says)
PLANTED = [
    (
        'reduce = "max" }',
        'reduce = "biggest" }',
        ('"biggest"', 0),
        "reduce 'biggest' is not one of max, min, sum, count",
    ),
    (
        '{ path = "$[*].value", reduce = "max" }',
        '{ path = "$[*].value" }',
        ('{ path = "$[*].value" }', 0),
        "columns.peak as a table needs `reduce` (max | min | sum | count)",
    ),
    (
        'reduce = "max" }',
        'reduce = "max", how = 1 }',
        ("how = 1", 0),
        "unknown key 'how' in columns.peak",
    ),
    (
        '"100 * q.rate / (q.rate + ep.peak)"',
        '"100 * q.rate / (q.rate + ep.peak"',
        ('"100 * q.rate / (q.rate + ep.peak"', 33),
        "columns.pct: expected a closing ) here",
    ),
    (
        '"100 * q.rate / (q.rate + ep.peak)"',
        '"100 * q.rate / x.peak"',
        ("x.peak", 0),
        "columns.pct: 'x.peak' names query 'x', which is not in `from` (ep, q)",
    ),
    (
        '"100 * q.rate / (q.rate + ep.peak)"',
        '"__import__(q.rate)"',
        ("__import__", 0),
        "columns.pct: '__import__' is not a query.column name, a number, min or max",
    ),
    (
        'from = ["q", "ep"]',
        'from = ["q", "ep", "nope"]',
        ('["q", "ep", "nope"]', 0),
        "unknown query 'nope'",
    ),
    (
        'from = ["q", "ep"]',
        'from = ["q", "ep", "share"]',
        ('["q", "ep", "share"]', 0),
        "share cannot read itself",
    ),
    (
        'column = "pct"',
        'column = "pct2"',
        ('"pct2"', 0),
        "gate 'share_ok' of stage 'canary' reads column 'pct2', but derived query 'share' has "
        "no such column (it has pct)",
    ),
    (
        'use = ["steady"]\nauto_rollback',
        'use = ["stedy"]\nauto_rollback',
        ('["stedy"]', 0),
        "unknown gate set 'stedy'; did you mean 'steady'?",
    ),
    (
        'id = "zero"\npercent = 0\n',
        'id = "zero"\npercent = 0\nuse = ["steady"]\n',
        ('"previous"', 0),
        "stage zero uses it, and has no previous stage",
    ),
    (
        'stages = ["canary"]',
        'stages = ["canery"]',
        ('["canery"]', 0),
        "unknown stage 'canery'; did you mean 'canary'?",
    ),
    (
        'stages = ["canary"]',
        'stages = ["full"]',
        ('["slow"]', 0),
        "slow is live only in full: it cannot fire in canary",
    ),
    (
        'severity = "critical" }',
        'severity = "medium" }',
        ('"medium" }', 0),
        "escalate goes up: from medium to a more urgent severity, not medium",
    ),
    (
        'escalate = { after = "6h"',
        'escalate = { afer = "6h"',
        ("afer", 0),
        "unknown key 'afer' in escalate; did you mean 'after'?",
    ),
    (
        'after = "6h"',
        'after = "6 hours"',
        ('"6 hours"', 0),
        "after: '6 hours' is not a duration",
    ),
    (
        'op = ">", slope = 0 }',
        'op = "==", slope = 0 }',
        ('op = "==", slope', 5),
        "trend op '==' is not one of < <= > >=",
    ),
    (
        'over = "12h"',
        'over = "1m"',
        ('"1m"', 0),
        "trend over must be at least 10m",
    ),
    (
        'op = ">", slope = 0 }',
        'op = ">" }',
        ('trend = { over = "12h", op = ">" }', 0),
        "trend needs `slope`",
    ),
    (
        'slope = 0 }\nseverity = "medium"',
        'slope = 0 }\nvalue = 3\nseverity = "medium"',
        ("3\nseverity", 0),
        "value does not go with trend",
    ),
    (
        'id = "no_new"\n  query = "q"',
        'id = "no_new"\n  query = "listed"',
        ('"listed"', 0),
        "new_rows compares every row of a query, but listed has a LIMIT (listed.sql:2:29)",
    ),
]


@pytest.mark.parametrize(("old", "new", "where", "says"), PLANTED, ids=[p[3][:40] for p in PLANTED])
def test_each_mistake_is_refused_at_its_file_line_col(tmp_path, old, new, where, says):
    assert RUNBOOK.count(old) == 1, old
    text = RUNBOOK.replace(old, new)
    found = problems_of(tmp_path, text)
    wanted = f"runbook.toml:{at(text, *where)}: "
    assert any(p.startswith(wanted) and says in p for p in found), (wanted, says, found)


def test_a_set_comparison_over_a_query_made_for_it_loads(tmp_path):
    # The same query without its LIMIT: the whole set, and the comparison is accepted.
    (tmp_path / "whole.sql").write_text("-- whole\nSELECT 1 AS rate ORDER BY 1;\n")
    text = RUNBOOK.replace(
        '[queries.listed]\nfile = "listed.sql"', '[queries.listed]\nfile = "whole.sql"'
    )
    text = text.replace('id = "no_new"\n  query = "q"', 'id = "no_new"\n  query = "listed"')
    book = runbook.load(write(tmp_path, text))
    assert book.stage("canary").gates[1].check.query == "listed"
