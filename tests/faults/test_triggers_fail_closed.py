"""A trigger that cannot be evaluated is UNKNOWN, never quiet: `check` exits 3 at least,
and advance is refused. Once, a critical trigger whose query failed read "· quiet", `check`
exited 0 and advance went ahead."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cutover.judge.alarms import TriggerState, fold
from cutover.judge.check import judge_stage
from cutover.runbook.loader import load
from cutover.sources.results import Cause, QueryResult
from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, kinds, write_runbook

TRIGGERS = """
[queries.broken]
title = "Stuck imports, from a table that is gone"
file = "queries/broken.sql"
refresh = "30s"

[queries.calm]
title = "Nothing stuck"
file = "queries/calm.sql"
refresh = "30s"

[[triggers]]
id = "stuck_burst"
query = "broken"
column = "stuck"
op = ">"
value = 10
severity = "critical"

[[triggers]]
id = "calm"
query = "calm"
column = "stuck"
op = ">"
value = 10
severity = "critical"
"""


def runbook_with_triggers(tmp_path):
    path = write_runbook(tmp_path)
    text = path.read_text()
    # The extra queries go with the others (before the stages); the triggers after them.
    head, stages = text.split("[[stages]]", 1)
    queries, triggers = TRIGGERS.split("[[triggers]]", 1)
    path.write_text(head + queries + "\n[[stages]]" + stages + "\n[[triggers]]" + triggers)
    (tmp_path / "queries" / "broken.sql").write_text("SELECT count(*) AS stuck FROM gone_table;\n")
    (tmp_path / "queries" / "calm.sql").write_text("SELECT 0 AS stuck;\n")
    return path


def test_check_says_unknown_and_exits_3_when_a_triggers_query_fails(tmp_path, empty_dsn):
    book = runbook_with_triggers(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        as_json = cli(book, env, "check", "--json")
        as_text = cli(book, env, "check")

    assert as_json.code == 3, as_json.output
    report = json.loads(as_json.stdout)
    by_id = {t["id"]: t for t in report["triggers"]}
    assert by_id["stuck_burst"]["fired"] is None
    assert "gone_table" in by_id["stuck_burst"]["reason"]
    assert by_id["calm"]["fired"] is False
    assert report["verdict"] == "wait"
    assert as_text.code == 3
    assert "? UNKNOWN" in as_text.stdout and "stuck_burst" in as_text.stdout
    assert "· quiet" in as_text.stdout  # the one that could be read is quiet


def test_advance_is_refused_while_a_trigger_is_unknown(tmp_path, empty_dsn):
    book = runbook_with_triggers(tmp_path)
    with fake_vercel() as fake:
        ran = cli(book, environ(fake, dsn=empty_dsn), "advance", "--confirm", "10")

    assert ran.code == 1, ran.output
    assert "trigger stuck_burst is UNKNOWN" in ran.stderr
    assert kinds(book) == []


def test_advance_is_refused_without_a_database_when_triggers_need_one(tmp_path):
    book = runbook_with_triggers(tmp_path)
    with fake_vercel() as fake:
        ran = cli(book, environ(fake), "advance", "--confirm", "10")
    assert ran.code == 1 and "triggers not checked yet" in ran.stderr


def test_a_stale_or_paused_trigger_is_unknown_and_a_fired_one_stays_latched(tmp_path):
    book = load(runbook_with_triggers(tmp_path))
    stage = book.stages[0]
    now = datetime(2026, 11, 20, 22, 50, tzinfo=UTC)
    fired = {"broken": QueryResult("broken", ("stuck",), ((46,),), now, 0.01)}
    alarms, changes = fold({}, judge_stage(book, stage, fired, now))
    assert alarms["stuck_burst"].state is TriggerState.FIRED
    # Five minutes on, nothing refreshed it (paused, or the refresh was slowed): stale.
    later = now + timedelta(minutes=5)
    stale = judge_stage(book, stage, fired, later)
    assert stale.triggers[0].fired is None and stale.verdict.value == "wait"
    alarms, changes = fold(alarms, stale)
    alarm = alarms["stuck_burst"]
    assert alarm.state is TriggerState.UNKNOWN and alarm.latched
    assert alarm.describe().startswith("FIRED 46 > 10 at 22:50Z; now unknown: stale")
    assert [c.became for c in changes if c.trigger_id == "stuck_burst"] == [TriggerState.UNKNOWN]
    # The database goes down: still latched, still unknown.
    down = {
        "broken": QueryResult(
            "broken", ran_at=later, error="database unreachable", cause=Cause.UNREACHABLE
        )
    }
    alarms, _ = fold(alarms, judge_stage(book, stage, down, later))
    assert alarms["stuck_burst"].latched
    # Only fresh data that says "quiet" clears it.
    calm = {"broken": QueryResult("broken", ("stuck",), ((0,),), later, 0.01)}
    alarms, changes = fold(alarms, judge_stage(book, stage, calm, later))
    assert not alarms["stuck_burst"].latched
    assert alarms["stuck_burst"].state is TriggerState.QUIET


def test_plain_stages_have_no_triggers_so_nothing_waits_on_them(tmp_path):
    # The guard does not invent a trigger check where the runbook has none.
    book = write_runbook(tmp_path, PLAIN_STAGES)
    with fake_vercel() as fake:
        ran = cli(book, environ(fake), "advance", "--confirm", "10")
    assert ran.code == 0, ran.output
