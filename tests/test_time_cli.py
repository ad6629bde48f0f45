"""Time in the runbook, through the headless commands, with a controllable past: journal
events and evidence are written with the times a test needs, the commands run for real."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cutover.record.evidence import Evaluation, EvidenceStore, evidence_path
from cutover.record.journal import Journal
from moves_world import cli, environ, fake_vercel, journal, write_runbook

STAGES = """
[queries.slow]
title = "Slow imports, last hour"
file = "queries/slow.sql"
refresh = "30s"

[queries.rate]
title = "Success"
file = "queries/rate.sql"
refresh = "30s"

[[stages]]
id = "off"
title = "Off"
percent = 0

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "2h"
max_gap = "30m"

  [[stages.steps]]
  id = "zero_v1"
  text = "Zero v1 traffic for an hour"
  after = "1h"
  needs = ["success"]

  [[stages.gates]]
  id = "success"
  query = "rate"
  column = "pct"
  op = ">="
  value = 95
  successes = "ok"
  trials = "total"

[[triggers]]
id = "slow_persisting"
query = "slow"
column = "slow"
op = ">"
value = 0
for = "6h"
severity = "medium"

[[triggers]]
id = "complaints"
kind = "manual"
severity = "high"
respond_within = "1h"
title = "User complaints about imports"
"""


def world(tmp_path):
    """A runbook whose queries are constants: slow imports now, 99 of 100 succeeding."""
    head, stages = STAGES.split("[[stages]]", 1)
    book = write_runbook(tmp_path, "[[stages]]" + stages)
    text = book.read_text()
    before, after = text.split("[[stages]]", 1)
    book.write_text(before + head + "\n[[stages]]" + after)
    (tmp_path / "queries" / "slow.sql").write_text("SELECT 3 AS slow;\n")
    (tmp_path / "queries" / "rate.sql").write_text("SELECT 99 AS ok, 100 AS total, 99.0 AS pct;\n")
    return book


def at_canary_since(book, hours: float) -> datetime:
    """The journal says the canary began `hours` ago (written with that clock)."""
    then = datetime.now(UTC) - timedelta(hours=hours)
    past = Journal(book.parent / "journal.jsonl", actor="alice", clock=lambda: then)
    common = {"from_stage": "off", "to_stage": "canary", "from_percent": 0, "to_percent": 10}
    past.append("advance.intent", action="a1", reason="", **common)
    past.append("advance.done", action="a1", flag_percent=10, verified="test")
    return then


def evidence(
    book,
    what: str,
    name: str,
    verdict: str,
    start: datetime,
    end: datetime,
    *,
    stage: str = "canary",
    every=timedelta(minutes=5),
    value=99.0,
    n=100.0,
):
    store = EvidenceStore(
        evidence_path(book.parent / "journal.jsonl"), by="watch", break_s=1800, flush_s=600
    )
    t = start
    while t <= end:
        store.record([Evaluation(what, name, stage, verdict, value, None, verdict, "", t, n)])
        t += every
    store.flush()


def run_json(book, env, *args):
    ran = cli(book, env, *args, "--json")
    return ran, json.loads(ran.stdout)


def test_a_trigger_with_for_is_pending_until_its_condition_has_held_that_long(tmp_path, empty_dsn):
    book = world(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        ran, first = run_json(book, env, "check")
        slow = next(t for t in first["triggers"] if t["id"] == "slow_persisting")
        assert slow["fired"] is False and slow["pending_s"] is not None and slow["for_s"] == 21600
        # The evidence says it has held for seven hours: now it fires.
        now = datetime.now(UTC)
        evidence(
            book, "trigger", "slow_persisting", "fired", now - timedelta(hours=7), now, stage="off"
        )
        ran, later = run_json(book, env, "check")
    slow = next(t for t in later["triggers"] if t["id"] == "slow_persisting")
    assert slow["fired"] is True and slow["pending_s"] is None
    assert ran.code == 1


def test_a_manual_trigger_is_raised_with_a_deadline_blocks_advance_and_clears(tmp_path, empty_dsn):
    book = world(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        no_note = cli(book, env, "raise", "complaints", "--note", " ")
        raised = cli(book, env, "raise", "complaints", "--note", "3 tickets about failed imports")
        _, report = run_json(book, env, "check")
        blocked = cli(book, env, "advance", "--confirm", "10")
        status = json.loads(cli(book, env, "status", "--json").stdout)
        cleared = cli(book, env, "clear", "complaints", "--note", "false alarm: a v1 bug")
        not_query = cli(book, env, "raise", "slow_persisting", "--note", "x")

    assert no_note.code == 2 and "needs --note" in no_note.stderr
    assert raised.code == 0 and "RAISED (high: respond; roll back by" in raised.stdout
    assert " left) unless cleared with a note" in raised.stdout  # the time left, in words
    complaints = next(t for t in report["triggers"] if t["id"] == "complaints")
    assert complaints["fired"] is True and complaints["kind"] == "manual"
    assert complaints["raised"]["note"] == "3 tickets about failed imports"
    raised_at = datetime.fromisoformat(complaints["raised"]["at"].replace("Z", "+00:00"))
    deadline = datetime.fromisoformat(complaints["deadline"].replace("Z", "+00:00"))
    assert deadline - raised_at == timedelta(hours=1)
    assert blocked.code == 1 and "trigger complaints FIRED" in blocked.stderr
    state = next(t for t in status["triggers"] if t["id"] == "complaints")
    assert state["state"] == "raised" and state["by"] == "tester"
    assert cleared.code == 0
    assert [e["kind"] for e in journal(book)] == ["trigger.raised", "trigger.cleared"]
    assert not_query.code == 2 and "only a manual trigger" in not_query.stderr


def test_a_step_with_after_and_needs_refuses_until_its_gate_has_held(tmp_path, empty_dsn):
    book = world(tmp_path)
    started = at_canary_since(book, hours=3)
    with fake_vercel(initial_value="10") as fake:
        env = environ(fake, dsn=empty_dsn)
        early = cli(book, env, "signoff", "zero_v1", "--note", "none seen")
        # The gate has passed for the last 90 minutes, by the evidence.
        now = datetime.now(UTC)
        evidence(book, "gate", "success", "pass", now - timedelta(minutes=90), now)
        # …and it passes now: a step is never signed plainly while its gate does not.
        (tmp_path / "queries" / "rate.sql").write_text(
            "SELECT 990 AS ok, 1000 AS total, 99.0 AS pct;\n"
        )
        signed = cli(book, env, "signoff", "zero_v1", "--note", "none seen")

    assert early.code == 1
    assert "cannot be signed yet: gate success PASS for 0s of 1h" in early.stderr
    assert signed.code == 0, signed.output
    assert started < datetime.now(UTC)


def test_the_hold_restarts_after_a_gap_and_accept_gap_forgives_it(tmp_path, empty_dsn):
    book = world(tmp_path)
    at_canary_since(book, hours=5)
    now = datetime.now(UTC)
    # Watched for 2 h, then nobody watched for 2 h, then watched again for the last hour.
    evidence(book, "gate", "success", "pass", now - timedelta(hours=5), now - timedelta(hours=3))
    evidence(book, "gate", "success", "pass", now - timedelta(hours=1), now)
    with fake_vercel(initial_value="10") as fake:
        env = environ(fake, dsn=empty_dsn)
        before = json.loads(cli(book, env, "status", "--json").stdout)["hold"]
        accepted = cli(book, env, "accept-gap", "--note", "the jump host rebooted")
        after = json.loads(cli(book, env, "status", "--json").stdout)["hold"]
        again = cli(book, env, "accept-gap", "--note", "twice")
        shown = cli(book, env, "evidence", "--gate", "success")

    # An hour of evidence up to when the test began, judged a moment later.
    assert not before["met"] and before["held_s"] <= 3600 + 120
    assert "gap (no evaluation)" in before["restart_reason"]
    assert accepted.code == 0 and "accepted by tester" in accepted.stdout
    assert after["held_s"] >= 4.5 * 3600 and after["met"]
    assert after["accepted_gaps"][0]["note"] == "the jump host rebooted"
    assert again.code == 1 and "no gap to accept" in again.stdout
    assert "gap 2h" in shown.stdout and "PASS" in shown.stdout


def test_the_digest_says_what_changed_while_you_were_away(tmp_path, empty_dsn):
    book = world(tmp_path)
    at_canary_since(book, hours=6)
    now = datetime.now(UTC)
    evidence(book, "gate", "success", "pass", now - timedelta(hours=6), now - timedelta(hours=4))
    evidence(book, "gate", "success", "wait", now - timedelta(hours=2), now, value=96.0, n=120)
    evidence(book, "trigger", "slow_persisting", "fired", now - timedelta(hours=2), now)
    with fake_vercel(initial_value="10") as fake:
        env = environ(fake, dsn=empty_dsn)
        ran = cli(book, env, "digest", "--since", "5h")

    assert ran.code == 0, ran.output
    text = ran.stdout
    assert "alice" not in text or "started advance" not in text  # older than 5 h
    assert "gate success PASS → WAIT" in text
    assert "trigger slow_persisting" in text
    assert "a 2h" in text and "gap" in text
    assert "canary: held 0s of 2h" in text or "canary: held" in text
    assert "more total at the current rate" in text


def test_an_advance_saves_the_stage_it_leaves_as_its_exit_snapshot(tmp_path, empty_dsn):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        ran = cli(book, environ(fake, dsn=empty_dsn), "advance", "--confirm", "10")
    assert ran.code == 0, ran.output
    from cutover.record.snapshots import latest, snapshots_dir

    saved = latest(snapshots_dir(tmp_path / "journal.jsonl"), "off")
    assert saved is not None and saved.label == "exit"
    assert saved.results["ok"].rows == ((1,),)  # every query, not only the gates'
    assert "v2_share" in saved.results  # a failing one is kept with its error


HIGH = """
[queries.slow]
title = "Slow imports, last hour"
file = "queries/slow.sql"
refresh = "30s"

[[stages]]
id = "off"
title = "Off"
percent = 0

[[stages]]
id = "canary"
title = "Canary"
percent = 10

[[triggers]]
id = "slow_imports"
query = "slow"
column = "slow"
op = ">"
value = 0
severity = "high"
respond_within = "1h"
"""


def test_a_fired_high_trigger_has_a_deadline_a_note_answers_it_and_advance_stays_held(
    tmp_path, empty_dsn
):
    head, stages = HIGH.split("[[stages]]", 1)
    book = write_runbook(tmp_path, "[[stages]]" + stages)
    before, after = book.read_text().split("[[stages]]", 1)
    book.write_text(before + head + "\n[[stages]]" + after)
    (tmp_path / "queries" / "slow.sql").write_text("SELECT 3 AS slow;\n")
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        _, fired = run_json(book, env, "check")
        answered = cli(book, env, "clear", "slow_imports", "--note", "known: a slow batch job")
        _, later = run_json(book, env, "check")
        held = cli(book, env, "advance", "--confirm", "10")

    trigger = fired["triggers"][0]
    assert trigger["fired"] is True and trigger["deadline"] is not None
    assert answered.code == 0 and "deadline answered" in answered.stdout
    trigger = later["triggers"][0]
    assert trigger["deadline"] is None
    assert trigger["answered"]["note"] == "known: a slow batch job"
    assert trigger["fired"] is True
    assert held.code == 1 and "trigger slow_imports FIRED" in held.stderr
