"""What the console's one-second tick costs once it judges the hold and `for` over evidence,
with a week of it on disk (the shipped runbook's canary, every gate and query trigger
evaluated every 30 s by a watcher, a WAIT blip now and then, a trigger firing for a while
each day). Per tick, as ratios to the same run's baseline, the tick's judging as it was
before evidence (`judge_stage` alone):

- naive: read the whole evidence file, then judge with it (what a console re-reading the
  file every second would pay, growing with the cutover);
- incremental, idle: follow the file (one stat: nothing new), then judge and hold;
- incremental, recording: the console records this tick's evaluations, follows the file,
  judges and holds;

plus the follower's first read against a full read, and a stress week where one gate flaps
on every evaluation (every evaluation a run).

Run: .venv/bin/python bench/console_evidence.py   [DAYS=7]
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cutover.judge.check import judge_stage, queries_for  # noqa: E402
from cutover.judge.session import Session  # noqa: E402
from cutover.record.evidence import (  # noqa: E402
    GATE,
    TRIGGER,
    Evaluation,
    read_evidence,
)
from cutover.record.journal import Journal  # noqa: E402
from cutover.runbook import loader as runbook_mod  # noqa: E402
from cutover.sources.results import QueryResult  # noqa: E402
from cutover.tui.evidence_feed import EvidenceFeed, EvidenceFollower  # noqa: E402
from cutover.tui.widgets.query_panel import columns_read  # noqa: E402

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
EVERY_S = 30
DAYS = float(os.environ.get("DAYS", "7"))


def best_of(fn, repeat: int = 7, inner: int = 20) -> float:
    """Seconds per call: the best of `repeat` batches of `inner` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - started) / inner)
    return min(times)


def world(folder: Path) -> Session:
    """The shipped runbook in a scratch folder, its journal at the canary since T0."""
    shutil.copy(ROOT / "runbook.toml", folder / "runbook.toml")
    shutil.copytree(ROOT / "queries", folder / "queries")
    book = runbook_mod.load(folder / "runbook.toml")
    session = Session(book, {"USER": "bench"})
    at = [T0 - timedelta(hours=1)]
    session.journal = Journal(book.journal_path, actor="bench", host="box", clock=lambda: at[0])
    first = book.stages[0]
    for step in first.steps:
        session.journal.append(
            "signoff", stage=first.id, step=step.id, visit=1, note="", override=False, probe=None
        )
    at[0] = T0
    canary = book.stages[1]
    session.journal.append(
        "advance.intent",
        action="a1",
        from_stage=first.id,
        to_stage=canary.id,
        from_percent=first.percent,
        to_percent=canary.percent,
        reason="",
    )
    session.journal.append("advance.done", action="a1", flag_percent=canary.percent, took_s=1)
    return session


def results_for(session: Session, stage, now: datetime) -> dict[str, QueryResult]:
    """A healthy answer from every query the stage's gates and the triggers read."""
    out = {}
    for qid in queries_for(session.runbook, stage):
        columns = columns_read(session.runbook, qid) or ("n",)
        values = []
        for name in columns:
            values.append(1000 if "total" in name else 990 if "success" in name else 0)
        rows = () if qid.startswith("stuck") else (tuple(values),)
        out[qid] = QueryResult(qid, columns, rows, ran_at=now)
    return out


def a_week(session: Session, stage, flapping: str | None = None) -> tuple[int, int]:
    """A watcher's week: every gate and query trigger every 30 s. Returns (evaluations,
    file bytes)."""
    # The week is simulated: the store's clock is its end, so no evaluation is "ahead".
    store = session.evidence_store("watch", clock=lambda: T0 + timedelta(days=DAYS + 1))
    digests = session.sql_digests()
    rng = random.Random(7)
    gates = [(g.id, digests[g.check.query]) for g in stage.gates]
    triggers = [(t.id, digests[t.check.query]) for t in session.runbook.triggers if t.check]
    rounds = int(DAYS * 86400 / EVERY_S)
    count = 0
    for i in range(rounds):
        at = T0 + timedelta(seconds=i * EVERY_S)
        batch = []
        for gate, sql in gates:
            blip = rng.random() < 1 / 360  # a WAIT about every 3 h
            verdict = "wait" if blip else "pass"
            if gate == flapping:
                verdict = "pass" if i % 2 else "wait"
            batch.append(Evaluation(GATE, gate, stage.id, verdict, 99.0, None, "", sql, at))
        day_minute = (i * EVERY_S // 60) % 1440
        for n, (trigger, sql) in enumerate(triggers):
            fired = n == 0 and 600 <= day_minute < 640  # 40 min a day
            verdict = "fired" if fired else "quiet"
            batch.append(Evaluation(TRIGGER, trigger, stage.id, verdict, 0.0, None, "", sql, at))
        store.record(batch)
        count += len(batch)
    store.flush()
    return count, session.evidence_path.stat().st_size


def measure(label: str, flapping: str | None = None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-evidence-"))
    try:
        session = world(folder)
        current, _ = session.state()
        stage = session.runbook.stage(current.stage_id)
        evaluations, size = a_week(session, stage, flapping)
        now = T0 + timedelta(days=DAYS)
        results = results_for(session, stage, now)
        path = session.evidence_path

        def baseline() -> None:
            judge_stage(session.runbook, stage, results, now)

        def naive() -> None:
            runs = read_evidence(path).runs
            report = session.judge(stage, results, now, current, runs=runs)
            session.judge_hold(current, now, report, runs=runs)

        feed = EvidenceFeed(
            session.evidence_store("console"), EvidenceFollower(path), session.sql_digests()
        )
        started = time.perf_counter()
        feed.poll(current.entered_at)
        first_read = time.perf_counter() - started
        started = time.perf_counter()
        full = read_evidence(path)
        full_read = time.perf_counter() - started

        def idle() -> None:
            feed.poll(current.entered_at)
            runs = feed.runs()
            report = session.judge(stage, results, now, current, runs=runs)
            session.judge_hold(current, now, report, runs=runs)

        tick = [now]

        def recording() -> None:
            tick[0] += timedelta(seconds=1)
            at = tick[0]
            feed.poll(current.entered_at)
            runs = feed.runs()
            report = session.judge(stage, results_for(session, stage, at), at, current, runs=runs)
            fresh = {(GATE, g.id) for g in stage.gates}
            if feed.record(report, fresh):
                runs = feed.runs()
            session.judge_hold(current, at, report, runs=runs)

        base = best_of(baseline)
        rows = [
            ("baseline: judge_stage alone (the tick before evidence)", base),
            ("naive: read the whole file + judge + hold", best_of(naive, repeat=3, inner=3)),
            ("incremental, idle: follow (a stat) + judge + hold", best_of(idle)),
            ("incremental, recording this tick + judge + hold", best_of(recording)),
        ]
        print(f"\n{label}: {evaluations:,} evaluations over {DAYS:g} days, {size:,} bytes on disk,")
        print(f"  {len(full.runs):,} runs ({len(feed.runs()):,} kept by the console after pruning)")
        print(f"  {'per tick':<58} {'µs':>10} {'× baseline':>11}")
        for name, seconds in rows:
            print(f"  {name:<58} {seconds * 1e6:>10,.0f} {seconds / base:>11.1f}")
        print(
            f"  {'start: the follower first read vs read_evidence':<58} "
            f"{first_read * 1e3:>8,.0f}ms {first_read / full_read:>10.1f}× a full read"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def table_rows(rounds: int) -> list:
    """For the table of `make bench`: the console's one-second tick with a week of evidence
    on disk, idle and recording, against judge_stage alone, interleaved."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import Row, Samples

    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-evidence-"))
    try:
        session = world(folder)
        current, _ = session.state()
        stage = session.runbook.stage(current.stage_id)
        a_week(session, stage)
        now = T0 + timedelta(days=DAYS)
        results = results_for(session, stage, now)
        feed = EvidenceFeed(
            session.evidence_store("console"),
            EvidenceFollower(session.evidence_path),
            session.sql_digests(),
        )
        feed.poll(current.entered_at)
        tick = [now]

        def baseline() -> None:
            judge_stage(session.runbook, stage, results, now)

        def idle() -> None:
            feed.poll(current.entered_at)
            runs = feed.runs()
            report = session.judge(stage, results, now, current, runs=runs)
            session.judge_hold(current, now, report, runs=runs)

        def recording() -> None:
            tick[0] += timedelta(seconds=1)
            at = tick[0]
            feed.poll(current.entered_at)
            runs = feed.runs()
            report = session.judge(stage, results_for(session, stage, at), at, current, runs=runs)
            if feed.record(report, {(GATE, g.id) for g in stage.gates}):
                runs = feed.runs()
            session.judge_hold(current, at, report, runs=runs)

        base, quiet, busy = Samples(), Samples(), Samples()
        for _ in range(rounds):
            base.add(best_of(baseline, repeat=3))
            quiet.add(best_of(idle, repeat=3))
            busy.add(best_of(recording, repeat=3))
        feed.flush()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        Row(f"console tick, {DAYS:g} days of evidence, idle", quiet, base, "judge_stage alone",
            unit="µs"),
        Row("console tick, recording this tick's verdicts", busy, base, "judge_stage alone",
            unit="µs"),
    ]  # fmt: skip


def main() -> None:
    measure("a week at the canary")
    measure("a stress week (gate `success` flaps on every evaluation)", flapping="success")


if __name__ == "__main__":
    main()
