"""Holds judged over the evidence, with a controllable clock: counting, restarting on a
FAIL, a WAIT and a gap, completing, and an accepted gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cutover.judge.hold import judge_hold
from cutover.record.evidence import Evaluation, EvidenceStore, read_evidence

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
HOUR = 3600.0


def ev(gate: str, verdict: str, at: datetime, reason: str = "") -> Evaluation:
    return Evaluation("gate", gate, "canary", verdict, 99.0, None, reason or verdict, "sql1", at)


class World:
    """A stage entered at T0, gates evaluated by a watcher every `every` minutes."""

    def __init__(self, tmp_path, gates=("success", "no_stuck")):
        self.store = EvidenceStore(tmp_path / "e.jsonl", by="watch", break_s=HOUR, flush_s=600)
        self.gates = gates
        self.now = T0

    def evaluate(self, until: datetime, every: timedelta, verdicts=None) -> None:
        verdicts = verdicts or {}
        while self.now < until:
            self.now += every
            self.store.record(ev(g, verdicts.get(g, "pass"), self.now) for g in self.gates)

    def hold(self, required_s=24 * HOUR, **kw):
        self.store.flush()
        runs = read_evidence(self.store.path).runs
        return judge_hold(
            stage="canary",
            gates=self.gates,
            required_s=required_s,
            entered_at=T0,
            now=self.now,
            runs=runs,
            **kw,
        )


def test_the_hold_counts_while_every_gate_passes_and_completes_at_the_hold(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=13), timedelta(minutes=5))
    hold = world.hold()
    assert 12.9 * HOUR <= hold.held_s <= 13 * HOUR and not hold.met
    assert hold.describe().startswith("held 12h 55m of 1d")
    world.evaluate(T0 + timedelta(hours=24, minutes=5), timedelta(minutes=5))
    assert world.hold().met


def test_a_fail_restarts_the_hold_and_says_when_and_why(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=10), timedelta(minutes=5))
    world.store.record([ev("success", "fail", T0 + timedelta(hours=10, minutes=1), "90 < 95")])
    world.evaluate(T0 + timedelta(hours=12), timedelta(minutes=5))
    hold = world.hold()
    assert 1.9 * HOUR <= hold.held_s <= 2 * HOUR
    assert hold.restarted_at == T0 + timedelta(hours=10, minutes=1)
    assert "success: FAIL (90 < 95)" in hold.restart_reason


def test_a_wait_restarts_the_hold_too(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=5), timedelta(minutes=5), {"no_stuck": "wait"})
    world.evaluate(T0 + timedelta(hours=6), timedelta(minutes=5))
    hold = world.hold()
    assert hold.held_s <= 1 * HOUR and "no_stuck: WAIT" in hold.restart_reason


def test_a_gap_longer_than_max_gap_restarts_the_hold(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=2), timedelta(minutes=5))
    world.now += timedelta(hours=2, minutes=10)  # nobody and nothing watched
    world.evaluate(world.now + timedelta(hours=1), timedelta(minutes=5))
    hold = world.hold()
    assert hold.held_s <= 1 * HOUR
    assert "a 2h 15m gap (no evaluation)" in hold.restart_reason
    # A gap within max_gap does not count against it.
    assert world.hold(max_gap_s=3 * HOUR).held_s >= 5 * HOUR


def test_silence_up_to_now_is_no_hold_at_all(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=3), timedelta(minutes=5))
    world.now += timedelta(hours=2)
    hold = world.hold()
    assert hold.held_s == 0 and "no evaluation for 2h" in hold.restart_reason


def test_an_accepted_gap_does_not_restart_the_hold(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=2), timedelta(minutes=5))
    gap_start = world.now
    world.now += timedelta(hours=3)
    world.evaluate(world.now + timedelta(hours=1), timedelta(minutes=5))
    accepted = [(gap_start, gap_start + timedelta(hours=3, minutes=5))]
    assert world.hold(accepted=accepted).held_s >= 5.9 * HOUR
    assert world.hold().held_s <= 1 * HOUR


def test_a_stage_nobody_evaluated_has_held_nothing(tmp_path):
    world = World(tmp_path)
    world.now = T0 + timedelta(hours=30)
    hold = world.hold()
    assert hold.held_s == 0 and not hold.met


def test_a_medium_trigger_holds_the_stage_back(tmp_path):
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=25), timedelta(minutes=5))
    hold = world.hold(held_by=("slow_persisting",))
    assert not hold.met and "held back by slow_persisting" in hold.describe()


def test_evidence_is_compact_and_survives_a_torn_last_line(tmp_path):
    world = World(tmp_path, gates=("success",))
    world.evaluate(T0 + timedelta(hours=24), timedelta(minutes=1))  # 1,440 evaluations
    world.store.flush()
    lines = world.store.path.read_text().splitlines()
    assert len(lines) < 200  # one run, re-appended at most every 10 minutes
    runs = read_evidence(world.store.path).runs
    assert len(runs) == 1 and runs[0].count == 1440
    with world.store.path.open("a") as f:
        f.write('{"run": "half')
    read = read_evidence(world.store.path)
    assert len(read.runs) == 1 and "torn" in read.warnings[0]


def test_a_restart_without_a_reason_says_the_verdict_alone(tmp_path):
    # Once, "no_stuck: WAIT ()".
    world = World(tmp_path)
    world.evaluate(T0 + timedelta(hours=1), timedelta(minutes=5))
    at = T0 + timedelta(hours=1, minutes=1)
    world.store.record([Evaluation("gate", "no_stuck", "canary", "wait", None, None, "", "s", at)])
    world.evaluate(T0 + timedelta(hours=2), timedelta(minutes=5))
    reason = world.hold().restart_reason
    assert "no_stuck: WAIT" in reason and "()" not in reason
