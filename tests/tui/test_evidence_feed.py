"""The console's evidence reader: it follows the file by byte offset and folds runs by id,
agreeing with a full read at every step; it waits for a partial line's newline; it starts
over when the file shrank or was replaced; it forgets only what can no longer matter; and
the console's own runs, not yet written, are merged over the file's."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover.record import evidence
from cutover.record.evidence import (
    GATE,
    TRIGGER,
    Evaluation,
    EvidenceStore,
    holding_since,
    read_evidence,
)
from cutover.tui.evidence_feed import EvidenceFeed, EvidenceFollower

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def ev(name: str, verdict: str, at: datetime, what: str = GATE, stage: str = "canary"):
    return Evaluation(what, name, stage, verdict, None, None, "", "sql", at)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def folded(runs) -> dict:
    return {r.run: r for r in runs}


def test_following_the_file_agrees_with_a_full_read_at_every_step(tmp_path: Path):
    path = tmp_path / "journal.evidence.jsonl"
    store = EvidenceStore(path, by="watch", break_s=600, flush_s=300)
    follower = EvidenceFollower(path)
    assert follower.poll() is False  # no file yet: nothing, and no error
    verdicts = ["pass"] * 5 + ["wait"] * 2 + ["pass"] * 9 + ["fail"] + ["pass"] * 4
    for i, verdict in enumerate(verdicts):
        store.record([ev("success", verdict, minutes(i)), ev("stuck", "pass", minutes(i))])
        follower.poll()
        assert folded(follower.runs.values()) == folded(read_evidence(path).runs), i
    store.flush()
    assert follower.poll() is True
    assert folded(follower.runs.values()) == folded(read_evidence(path).runs)
    assert follower.poll() is False  # nothing new: nothing read


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    EvidenceStore(path, by="watch").record([ev("success", "pass", T0)])
    follower = EvidenceFollower(path)
    follower.poll()
    other = tmp_path / "other.jsonl"
    EvidenceStore(other, by="watch").record([ev("stuck", "pass", T0)])
    line = other.read_bytes()
    with path.open("ab") as f:
        f.write(line[:20])  # a writer mid-append
    assert follower.poll() is False
    assert follower.warnings == []
    with path.open("ab") as f:
        f.write(line[20:])
    assert follower.poll() is True
    assert {r.name for r in follower.runs.values()} == {"success", "stuck"}


def test_a_replaced_or_shrunk_file_is_read_again_from_its_start(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    EvidenceStore(path, by="watch").record([ev("success", "pass", T0)])
    follower = EvidenceFollower(path)
    follower.poll()
    # replaced by another file (restored from a backup, say) with other runs
    fresh = tmp_path / "fresh.jsonl"
    EvidenceStore(fresh, by="watch").record([ev("stuck", "fail", T0)])
    os.replace(fresh, path)
    assert follower.poll() is True
    assert {(r.name, r.verdict) for r in follower.runs.values()} == {("stuck", "fail")}
    # shrunk in place
    path.write_bytes(b"")
    assert follower.poll() is True
    assert follower.runs == {}
    # rewritten in place, the same size, other content: what was read changed under it
    EvidenceStore(path, by="watch").record([ev("success", "pass", T0)])
    follower.poll()
    text = path.read_bytes()
    path.write_bytes(text.replace(b'"pass"', b'"fail"'))
    with path.open("ab") as f:
        f.write(b"\n")  # and grown by a byte, so the size alone does not tell
    assert follower.poll() is True
    assert {(r.name, r.verdict) for r in follower.runs.values()} == {("success", "fail")}


def test_pruning_forgets_old_gate_runs_but_not_what_for_needs(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    store = EvidenceStore(path, by="watch", break_s=600, flush_s=1)
    entry = minutes(60)
    # a trigger's condition: held once, went quiet, then holding since minute 10, across
    # the stage change
    store.record([ev("slow", "fired", minutes(-30), TRIGGER, "prep")])
    store.record([ev("slow", "quiet", minutes(0), TRIGGER, "prep")])
    for m in range(10, 120, 5):
        stage = "prep" if minutes(m) < entry else "canary"
        store.record(
            [ev("slow", "fired", minutes(m), TRIGGER, stage), ev("success", "pass", minutes(m))]
        )
    store.flush()
    follower = EvidenceFollower(path)
    follower.poll()
    since_before = holding_since(follower.runs.values(), "slow")
    follower.prune(entry)
    assert all(r.last >= entry for r in follower.runs.values() if r.what == GATE)
    assert holding_since(follower.runs.values(), "slow") == since_before == minutes(10)
    kept = sorted((r.first, r.verdict) for r in follower.runs.values() if r.what == TRIGGER)
    assert kept[0] == (minutes(0), "quiet")  # what ended before its last quiet is gone


def test_before_any_stage_is_entered_a_flapping_gate_is_pruned_too(tmp_path: Path):
    # The prerequisites can sit open for days with the console up: nothing was pruned before
    # a stage was entered, and every run of a gate flapping at each refresh stayed.
    path = tmp_path / "e.jsonl"
    store = EvidenceStore(path, by="watch", break_s=600, flush_s=1)
    store.record([ev("slow", "fired", minutes(-30), TRIGGER, "prep")])
    store.record([ev("slow", "quiet", minutes(0), TRIGGER, "prep")])
    for m in range(1, 400):
        gate = ("pass", "fail")[m % 2] if m < 300 else "pass"
        store.record([ev("success", gate, minutes(m)), ev("slow", "fired", minutes(m), TRIGGER)])
    store.flush()
    follower = EvidenceFollower(path)
    follower.poll()
    since_before = holding_since(follower.runs.values(), "slow")
    assert len(follower.runs) > 300
    follower.prune(None)
    assert len(follower.runs) <= 4, sorted(
        (r.name, r.verdict, r.last) for r in follower.runs.values()
    )
    assert holding_since(follower.runs.values(), "slow") == since_before == minutes(1)
    passing = [r for r in follower.runs.values() if r.what == GATE and r.verdict == "pass"]
    assert [r.first for r in passing] == [minutes(300)]  # the pass since its last fail


def test_the_consoles_own_open_runs_are_merged_over_the_file(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    store = EvidenceStore(path, by="console", break_s=3600, flush_s=3600)
    feed = EvidenceFeed(store, EvidenceFollower(path), {})
    store.record([ev("success", "pass", T0)])
    store.record([ev("success", "pass", minutes(30))])  # not written yet: flush_s is 1 h
    feed.poll(T0)
    assert max(r.last for r in read_evidence(path).runs) == T0  # the file lags…
    assert max(r.last for r in feed.runs()) == minutes(30)  # …the console does not


def test_the_hold_and_for_judged_over_what_is_kept_are_what_all_the_evidence_says(
    tmp_path: Path,
):
    from cutover.judge.hold import judge_hold

    rng = random.Random(20261120)
    for trial in range(30):
        path = tmp_path / f"e{trial}.jsonl"
        store = EvidenceStore(path, by="watch", break_s=600, flush_s=60)
        entry = minutes(rng.choice([0, 30, 90]))
        at = minutes(-60)
        while at < minutes(240):
            stage = "prep" if at < entry else "canary"
            gate = rng.choices(["pass", "wait", "fail"], [20, 1, 1])[0]
            trigger = rng.choices(["quiet", "fired", "unknown"], [6, 3, 1])[0]
            store.record(
                [ev("success", gate, at, GATE, stage), ev("slow", trigger, at, TRIGGER, stage)]
            )
            at += timedelta(minutes=rng.choice([1, 5, 15, 70]))  # 70: a gap
        store.flush()
        follower = EvidenceFollower(path)
        follower.poll()
        everything = tuple(follower.runs.values())
        follower.prune(entry)
        kept = tuple(follower.runs.values())
        assert len(kept) <= len(everything)

        def hold(runs, entry=entry, now=at):
            return judge_hold(
                stage="canary",
                gates=["success"],
                required_s=86400,
                entered_at=entry,
                now=now,
                runs=runs,
                max_gap_s=3600,
            )

        assert hold(kept) == hold(everything), trial
        assert holding_since(kept, "slow") == holding_since(everything, "slow"), trial


def test_a_flapping_gate_costs_the_store_nothing_per_run_that_ended(tmp_path: Path):
    """The console's one store lives as long as the console (the watcher's, for weeks): a
    gate whose verdict changes at every refresh starts a run each time; once ended, a run
    must leave nothing behind in the store (it kept each one's last written time)."""
    import gc
    import tracemalloc

    written: list[int] = []
    store = EvidenceStore(
        tmp_path / "e.jsonl", by="console", sink=lambda runs, lines: written.append(len(lines))
    )

    def flap(times: int, start: int) -> None:
        for i in range(start, start + times):
            at = T0 + timedelta(seconds=i)
            store.record([ev("success", ("pass", "fail")[i % 2], at), ev("stuck", "pass", at)])

    # Only what the evidence module allocated and still holds: the process's total also
    # counts other threads' work (a full run's worker has some), which made this flaky.
    held_here = [tracemalloc.Filter(True, evidence.__file__)]

    def held() -> int:
        gc.collect()
        return sum(
            s.size
            for s in tracemalloc.take_snapshot().filter_traces(held_here).statistics("filename")
        )

    tracemalloc.start()
    try:
        # The store's dicts at their working size first. Encoding lines leaves a window of
        # the latest few hundred timestamps' text alive (~25 KB, as many after 2,000 runs as
        # after 8,000): the bound below is above it and far below a leak's 360 KB.
        flap(2200, 0)
        written.clear()
        before = held()
        flap(4000, 2200)
        written.clear()
        grown = held() - before
    finally:
        tracemalloc.stop()
    assert len(store.open_runs()) == 2
    # 4,000 runs ended meanwhile; kept, each was ~90 bytes (360 KB): what is left is noise.
    assert grown < 100_000, f"{grown} bytes held after 4,000 more runs"
