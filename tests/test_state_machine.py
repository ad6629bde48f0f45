"""The state replayed from the journal, and what the operator may do now and why not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover.judge.check import judge_stage
from cutover.judge.hold import Hold
from cutover.record import state
from cutover.record.journal import Journal
from cutover.runbook import loader as runbook
from cutover.sources.results import QueryResult
from cutover.traffic.flags import FlagState
from cutover.traffic.machine import decide

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def reads(percent: int | None) -> FlagState:
    """The flag read back at `percent`, live and settled."""
    return FlagState(percent, None if percent is None else str(percent))


RUNBOOK = """\
version = 1
title = "t"

[flag]
kind = "file"
path = "flag"

[queries.rate]
file = "rate.sql"
refresh = "30s"

[[stages]]
id = "prep"
percent = 0

  [[stages.steps]]
  id = "ready"
  text = "Ready"

[[stages]]
id = "canary"
percent = 10
hold = "24h"

  [[stages.steps]]
  id = "complaints"
  text = "No complaints"

  [[stages.steps]]
  id = "memory"
  text = "Memory stable"

  [[stages.gates]]
  id = "success"
  query = "rate"
  column = "pct"
  op = ">="
  value = 95

[[stages]]
id = "half"
percent = 50
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def setup(tmp_path: Path) -> tuple[runbook.Runbook, Journal, Clock]:
    (tmp_path / "rate.sql").write_text("SELECT 99 AS pct;\n")
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    book = runbook.load(tmp_path / "runbook.toml")
    clock = Clock()
    return book, Journal(book.journal_path, actor="ana", host="bastion", clock=clock), clock


def move(
    journal: Journal,
    kind: str,
    frm: str,
    to: str,
    frm_pct: int,
    to_pct: int,
    outcome: str | None = "done",
    action: str = "a1",
) -> None:
    journal.append(
        f"{kind}.intent",
        action=action,
        from_stage=frm,
        to_stage=to,
        from_percent=frm_pct,
        to_percent=to_pct,
        reason="",
    )
    if outcome:
        journal.append(f"{kind}.{outcome}", action=action)


def replayed(book, journal) -> state.CutoverState:
    return state.replay(book, journal.read().events)


def report_with(book, pct, at):
    result = QueryResult("rate", columns=("pct",), rows=((pct,),), ran_at=at, duration_s=0.01)
    return judge_stage(book, book.stage("canary"), {"rate": result}, at)


def test_an_empty_journal_is_the_first_stage_at_its_percent(tmp_path):
    book, journal, _ = setup(tmp_path)
    s = replayed(book, journal)
    assert (s.stage_id, s.percent, s.visit, s.signoffs, s.pending) == ("prep", 0, 1, {}, None)


def test_a_done_advance_enters_the_next_stage_and_starts_its_hold(tmp_path):
    book, journal, clock = setup(tmp_path)
    journal.append("signoff", stage="prep", step="ready", visit=1, note="", override=False)
    clock.now = T0 + timedelta(minutes=5)
    move(journal, "advance", "prep", "canary", 0, 10)
    s = replayed(book, journal)
    assert (s.stage_id, s.percent, s.visit) == ("canary", 10, 2)
    assert s.entered_at == clock.now
    assert s.hold_elapsed_s(clock.now + timedelta(hours=2)) == 7200
    assert s.signoffs == {}  # the prep sign-off belonged to the prep visit


def test_a_failed_advance_stays_where_it_was(tmp_path):
    book, journal, _ = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10, outcome="failed")
    s = replayed(book, journal)
    assert (s.stage_id, s.percent, s.pending) == ("prep", 0, None)


def test_an_intent_without_an_outcome_is_pending(tmp_path):
    book, journal, _ = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10, outcome=None)
    s = replayed(book, journal)
    assert s.pending is not None
    assert (s.pending.move, s.pending.to_percent, s.pending.actor) == ("advance", 10, "ana")
    assert s.stage_id == "prep"


def test_sign_offs_belong_to_one_visit_and_are_walked_again_after_a_rollback(tmp_path):
    book, journal, _ = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10, action="a1")
    journal.append(
        "signoff", stage="canary", step="complaints", visit=2, note="none", override=False
    )
    assert set(replayed(book, journal).signoffs) == {"complaints"}
    move(journal, "rollback", "canary", "prep", 10, 0, action="a2")
    move(journal, "advance", "prep", "canary", 0, 10, action="a3")
    s = replayed(book, journal)
    assert (s.stage_id, s.visit) == ("canary", 4)
    assert s.signoffs == {}  # the first canary visit's sign-off stays in the journal only
    # every entry is a new visit: prep, canary, prep again, canary again
    assert s.entered_at == journal.read().events[-1].ts


def test_advance_is_refused_with_sign_offs_and_hold_left(tmp_path):
    book, journal, clock = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10)
    clock.now = T0 + timedelta(hours=11)
    s = replayed(book, journal)
    held = Hold(24 * 3600, 11 * 3600, 11 * 3600, T0, None, None)
    actions = decide(book, s, clock.now, report_with(book, 99, clock.now), reads(10), held)
    assert not actions.advance.allowed
    assert actions.advance.reason == "2 sign-offs and 13h of hold left"
    # Without evidence the hold has not been judged, and time alone is not a hold.
    unjudged = decide(book, s, clock.now, report_with(book, 99, clock.now), reads(10)).advance
    assert "1d of hold (not judged yet: no evidence)" in unjudged.reason


def test_advance_is_refused_while_a_gate_waits_and_says_which(tmp_path):
    book, journal, clock = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10)
    for step in ("complaints", "memory"):
        journal.append("signoff", stage="canary", step=step, visit=2, note="", override=False)
    clock.now = T0 + timedelta(hours=25)
    s = replayed(book, journal)
    assert "gates not checked yet" in decide(book, s, clock.now, None, reads(10)).advance.reason
    # a result older than two refresh intervals (2 × 30 s) no longer counts
    stale = judge_stage(
        book,
        book.stage("canary"),
        {"rate": QueryResult("rate", ("pct",), ((99,),), clock.now - timedelta(minutes=5), 0.01)},
        clock.now,
    )
    held = Hold(24 * 3600, 25 * 3600, 25 * 3600, T0, None, None)
    refused = decide(book, s, clock.now, stale, reads(10), held).advance
    assert not refused.allowed and "gate success is WAIT" in refused.reason
    report = report_with(book, 99, clock.now)
    allowed = decide(book, s, clock.now, report, reads(10), held).advance
    assert allowed.allowed, allowed.reason
    assert allowed.reason == "10 % → 50 % (half)"


def test_advance_is_refused_while_another_action_is_pending(tmp_path):
    book, journal, clock = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10, outcome=None)
    journal.append("signoff", stage="prep", step="ready", visit=1, note="", override=False)
    s = replayed(book, journal)
    refused = decide(book, s, clock.now, None, reads(0)).advance
    assert not refused.allowed and "still in flight" in refused.reason


def test_rollback_is_never_blocked_by_a_failing_gate_or_missing_sign_offs(tmp_path):
    book, journal, clock = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10)
    s = replayed(book, journal)
    actions = decide(book, s, clock.now, report_with(book, 10, clock.now), reads(10))
    assert actions.rollback.allowed
    assert actions.rollback_stage.id == "prep"
    assert actions.stepback.allowed and actions.previous_stage.id == "prep"


def test_rollback_is_allowed_whatever_the_flag_reads(tmp_path):
    book, journal, clock = setup(tmp_path)
    s = replayed(book, journal)
    at_zero = decide(book, s, clock.now, None, reads(0)).rollback
    # at 0 % it is still allowed: it says so and journals it, touching nothing
    assert at_zero.allowed and "already reads 0 %" in at_zero.reason
    # someone set 50 % in the dashboard while the journal says 0 %
    assert decide(book, s, clock.now, None, reads(50)).rollback.allowed
    # and when the flag cannot be read, traffic may be flowing: allowed
    assert decide(book, s, clock.now, None, None).rollback.allowed


def test_the_last_stage_completes_the_cutover_and_then_nothing_advances(tmp_path):
    book, journal, clock = setup(tmp_path)
    move(journal, "advance", "prep", "canary", 0, 10, action="a1")
    move(journal, "advance", "canary", "half", 10, 50, action="a2")
    s = replayed(book, journal)
    actions = decide(book, s, clock.now, None, reads(50))
    assert actions.next_stage is None
    assert actions.advance.allowed and "complete the cutover" in actions.advance.reason
    journal.append("complete", stage="half")
    done = replayed(book, journal)
    refused = decide(book, done, clock.now, None, reads(50)).advance
    assert not refused.allowed and "the cutover is complete" in refused.reason


def test_events_of_unknown_kinds_and_stages_are_skipped_on_replay(tmp_path):
    book, journal, _ = setup(tmp_path)
    journal.append("note", text="hello")
    move(journal, "advance", "prep", "renamed_stage", 0, 10)
    s = replayed(book, journal)
    assert s.stage_id == "prep" and s.pending is None


def test_staleness_follows_the_runbooks_interval(tmp_path):
    book, _, clock = setup(tmp_path)
    stage = book.stage("canary")
    fresh = {"rate": QueryResult("rate", ("pct",), ((99,),), clock.now, 0.01)}
    assert judge_stage(book, stage, fresh, clock.now).gates[0].verdict.value == "pass"
    ran = clock.now - timedelta(minutes=3)  # the runbook refreshes every 30 s: stale
    old = {"rate": QueryResult("rate", ("pct",), ((99,),), ran, 0.01)}
    assert judge_stage(book, stage, old, clock.now).gates[0].verdict.value == "wait"
