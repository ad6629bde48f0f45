"""An infinite value is a value: a trigger judges it (∞ > 10 fires), the evidence records it
(as text, JSON has no word for it) and every screen shows it. Once, `numeric 'Infinity'`
made the console exit 2 ("Out of range float values are not JSON compliant") on every start
while it lasted, `check` exited 2, and the evidence stopped growing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.judge.check import evaluations, judge_stage
from cutover.judge.verdicts import Why
from cutover.record.evidence import TRIGGER, EvidenceStore, evidence_path, read_evidence
from cutover.record.journal import Journal
from cutover.runbook.loader import load
from cutover.sources.results import QueryResult
from moves_world import cli, environ, fake_vercel, write_runbook
from tui.conftest import fixed_app, until, visible_text

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

TRIGGER_ON_INFINITY = """
[queries.backlog]
title = "Backlog, from a numeric that overflowed to Infinity"
file = "queries/backlog.sql"
refresh = "30s"

[[triggers]]
id = "backlog_high"
query = "backlog"
column = "backlog"
op = ">"
value = 10
severity = "critical"
"""


def runbook_with_infinity(tmp_path: Path, value: str = "'Infinity'::numeric") -> Path:
    path = write_runbook(tmp_path)
    head, stages = path.read_text().split("[[stages]]", 1)
    queries, trigger = TRIGGER_ON_INFINITY.split("[[triggers]]", 1)
    path.write_text(head + queries + "\n[[stages]]" + stages + "\n[[triggers]]" + trigger)
    (tmp_path / "queries" / "backlog.sql").write_text(f"SELECT {value} AS backlog;\n")
    return path


def strict_json(text: str) -> object:
    """JSON as every other program reads it: no Infinity or NaN literals."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_check_judges_infinity_fires_the_trigger_and_prints_valid_json(tmp_path, empty_dsn):
    book = runbook_with_infinity(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        first = cli(book, env, "check", "--json")
        text = cli(book, env, "check")
        again = cli(book, env, "check", "--json")

    assert first.code == 1, first.output  # fired: not an error (2), not unknown (3)
    (trigger,) = [t for t in strict_json(first.stdout)["triggers"] if t["id"] == "backlog_high"]
    assert trigger["fired"] is True and trigger["value"] == "Infinity"
    assert text.code == 1 and "∞ > 10" in text.stdout
    assert again.code == 1, again.output
    # Every check recorded its evaluation: the evidence kept growing, readable as a value.
    runs = [r for r in read_evidence(evidence_path(book.parent / "journal.jsonl")).runs]
    fired = [r for r in runs if r.name == "backlog_high"]
    assert fired and all(r.verdict == "fired" and r.value == math.inf for r in fired)
    assert sum(r.count for r in fired) == 3


def test_minus_infinity_fires_a_below_trigger_and_the_evidence_reads_it_back(tmp_path):
    book = load(runbook_with_infinity(tmp_path))
    trigger = book.triggers[0]
    rows = QueryResult("backlog", ("backlog",), ((-math.inf,),), ran_at=AT)
    report = judge_stage(book, book.stages[0], {"backlog": rows}, now=AT)
    (judged,) = [t for t in report.triggers if t.id == trigger.id]
    assert judged.judgement.trigger_fired is False and judged.judgement.value == -math.inf

    store = EvidenceStore(tmp_path / "evidence.jsonl", by="test")
    for minutes in range(3):  # a run that is open keeps being appended
        at = AT + timedelta(minutes=minutes)
        store.record(evaluations(report, {}, at=at))
    store.flush()
    back = read_evidence(tmp_path / "evidence.jsonl").runs
    (run,) = [r for r in back if r.what == TRIGGER]
    assert run.value == -math.inf and run.count == 3


def test_infinite_counts_make_a_proportion_unknown_never_a_crash(tmp_path):
    book = load(runbook_with_infinity(tmp_path))
    from cutover.judge.gates import judge
    from cutover.runbook.model import Comparison

    check = Comparison(query="q", op=">=", value=95, successes="ok", trials="n")
    for ok, n in ((math.inf, math.inf), (5.0, math.inf), (math.nan, 10.0)):
        result = QueryResult("q", ("ok", "n"), ((ok, n),), ran_at=AT)
        judged = judge(check, result, now=AT)
        assert judged.holds is None and judged.why is Why.MISMATCH, (ok, n, judged)
        assert judged.trigger_fired is None  # unknown, never quiet
    assert book  # the runbook loaded with the infinite query in it


def test_a_journal_field_holding_infinity_is_kept_as_text(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl", actor="ops", host="box")
    event = journal.append("trigger.raised", trigger="backlog_high", value=math.inf, note="")
    assert event.fields["value"] == "Infinity"
    assert journal.verify().ok


@pytest.mark.parametrize("value", [float("-inf")])
async def test_the_console_shows_infinity_fires_and_stays_up(tmp_path: Path, value: float):
    app = fixed_app(tmp_path, stage="canary", rate=value)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "‼ CRITICAL TRIGGER FIRED" in visible_text(app))
        assert "-∞ < 90" in visible_text(app)
        await pilot.press("r")  # a second evaluation appends to the same open run
        await pilot.pause(0.2)
        assert app.is_running
    runs = read_evidence(evidence_path(tmp_path / "journal.jsonl")).runs
    assert any(r.name == "success_low" and r.value == -math.inf for r in runs)
