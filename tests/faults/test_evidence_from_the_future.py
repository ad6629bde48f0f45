"""Time cannot be forged or bent. Once, one evaluation written by a clock 30 days ahead made
every `for` trigger quiet until that date (so an armed auto-rollback never ran), the hold
read "a 29d 23h gap", and accept-gap forgave a gap ending in the future, after which the hold
counted across a real silence. Evidence dated after now is refused when recorded, ignored
(and said) when read, and an accepted gap never reaches past the moment it was accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cutover.judge.hold import judge_hold
from cutover.record.events import Kind
from cutover.record.evidence import (
    GATE,
    TRIGGER,
    Evaluation,
    EvidenceStore,
    holding_since,
    read_evidence,
)
from cutover.record.journal import Journal
from cutover.record.state import replay
from cutover.runbook.loader import load
from moves_world import PLAIN_STAGES, write_runbook

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AHEAD = NOW + timedelta(days=30)


def evaluation(what: str, name: str, verdict: str, at: datetime) -> Evaluation:
    return Evaluation(what, name, "canary", verdict, 1.0, None, verdict, "sql", at)


def store_at(tmp_path, clock) -> EvidenceStore:
    return EvidenceStore(tmp_path / "e.jsonl", by="watch", break_s=3600, flush_s=1, clock=clock)


def test_a_quiet_evaluation_from_a_clock_ahead_does_not_silence_a_for_trigger(tmp_path):
    # The forger's own clock is 30 days ahead: its store takes the evaluation as present…
    store_at(tmp_path, lambda: AHEAD).record([evaluation(TRIGGER, "slow", "quiet", AHEAD)])
    # …while the honest watcher has seen the condition hold for 7 h.
    honest = store_at(tmp_path, lambda: NOW)
    for hour in range(8):
        honest.record([evaluation(TRIGGER, "slow", "fired", NOW - timedelta(hours=7 - hour))])
    honest.flush()
    runs = read_evidence(tmp_path / "e.jsonl").runs
    assert holding_since(runs, "slow") is None  # what an unguarded reader concluded
    assert holding_since(runs, "slow", NOW) == NOW - timedelta(hours=7)


def test_a_store_refuses_an_evaluation_dated_after_its_clock(tmp_path):
    store = store_at(tmp_path, lambda: NOW)
    store.record([evaluation(GATE, "success", "pass", NOW + timedelta(minutes=1))])  # skew
    store.record([evaluation(GATE, "success", "fail", NOW + timedelta(hours=3))])
    store.flush()
    runs = read_evidence(tmp_path / "e.jsonl").runs
    assert [r.verdict for r in runs] == ["pass"]
    assert [e.verdict for e in store.refused] == ["fail"]


def test_a_clock_left_wrong_costs_the_store_only_the_latest_refusals(tmp_path):
    # The store lives as long as its console or watcher: one refusal kept per evaluation
    # made while a clock is wrong grew for as long as it stayed wrong.
    store = store_at(tmp_path, lambda: NOW)
    for n in range(1000):
        store.record([evaluation(GATE, "success", "fail", NOW + timedelta(hours=3, seconds=n))])
    assert len(store.refused) == 100
    assert store.refused[-1].at == NOW + timedelta(hours=3, seconds=999)  # the latest kept


def test_the_hold_ignores_evaluations_from_the_future_and_says_so(tmp_path):
    entered = NOW - timedelta(hours=2)
    honest = store_at(tmp_path, lambda: NOW)
    for minutes in range(0, 121, 5):
        honest.record([evaluation(GATE, "success", "pass", entered + timedelta(minutes=minutes))])
    honest.flush()
    store_at(tmp_path, lambda: AHEAD).record([evaluation(GATE, "success", "fail", AHEAD)])
    runs = read_evidence(tmp_path / "e.jsonl").runs
    hold = judge_hold(
        stage="canary",
        gates=["success"],
        required_s=7200,
        entered_at=entered,
        now=NOW,
        runs=runs,
    )
    assert hold.met, hold.describe()
    assert hold.future == 1
    assert "ignored 1 evaluation dated after now" in hold.describe()
    assert "29d" not in hold.describe()


def test_an_accepted_gap_never_reaches_past_the_moment_it_was_accepted(tmp_path):
    book = load(write_runbook(tmp_path, PLAIN_STAGES))
    clock = [NOW]
    journal = Journal(book.journal_path, actor="ops", host="box", clock=lambda: clock[0])
    journal.append(
        Kind.GAP_ACCEPTED,
        stage="prep",
        gap_start=(NOW - timedelta(hours=1)).isoformat(),
        gap_end=AHEAD.isoformat(),  # a gap "ending" 30 days from now
        note="forged",
    )
    state = replay(book, journal.read().events)
    (gap,) = state.accepted_gaps
    assert gap.end == NOW
    # A real silence after the acceptance is not forgiven: it restarts the hold.
    entered = NOW - timedelta(hours=2)
    store = store_at(tmp_path, lambda: NOW + timedelta(hours=1))
    watched = [entered + timedelta(minutes=m) for m in range(0, 61, 5)]  # until NOW - 1 h
    watched += [NOW + timedelta(minutes=m) for m in range(10, 61, 5)]  # silent 1 h 10 m
    for at in watched:
        store.record([evaluation(GATE, "success", "pass", at)])
    store.flush()
    hold = judge_hold(
        stage="canary",
        gates=["success"],
        required_s=3 * 3600,
        entered_at=entered,
        now=NOW + timedelta(hours=1),
        runs=read_evidence(tmp_path / "e.jsonl").runs,
        max_gap_s=600,
        accepted=[(g.start, g.end) for g in state.accepted_gaps],
    )
    assert hold.restart_reason and "gap" in hold.restart_reason
    assert hold.held_s < 3600
