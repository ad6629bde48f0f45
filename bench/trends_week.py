"""What the console's trends hold and cost with a week of evidence in one stage: the
shipped runbook's canary, every gate and query trigger evaluated every 30 s by a watcher
(bench/console_evidence.py's week), quiet, then with one gate flapping at every evaluation
(every evaluation a run: the worst week the trends can be given).

Per week, against baselines measured in the same run:
- memory the trends' readings hold (report/timeline.Readings, as the console keeps them for
  the current and the previous stage) against the evidence file's size on disk;
- their first read (on a thread in the console) against read_evidence, a plain full read;
- one trend tick (every panel's gates and triggers: Readings.points over the stage, every
  5 s on the console's loop) against judge_stage alone, the tick before evidence.

Run: .venv/bin/python bench/trends_week.py   [DAYS=7]
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import console_evidence as week  # puts src on the path: first

from cutover.judge.check import judge_stage
from cutover.record.evidence import read_evidence
from cutover.report.timeline import Readings


def measure(label: str, flapping: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-trends-"))
    try:
        session = week.world(folder)
        current, _ = session.state()
        stage = session.runbook.stage(current.stage_id)
        gate = stage.gates[0].id if flapping else None
        evaluations, size = week.a_week(session, stage, gate)
        now = week.T0 + timedelta(days=week.DAYS)
        path = session.evidence_path

        gc.collect()
        tracemalloc.start()
        traced = Readings(session.store.evidence_feed(), session.journal.key)
        traced.read()
        held, _ = tracemalloc.get_traced_memory()  # while it is still held
        tracemalloc.stop()
        del traced
        gc.collect()
        readings = Readings(session.store.evidence_feed(), session.journal.key)
        started = time.perf_counter()  # timed untraced: tracemalloc slows a read 4×
        readings.read()
        first_read = time.perf_counter() - started
        started = time.perf_counter()
        read_evidence(path)
        full_read = time.perf_counter() - started

        items = [("gate", g.id, stage.id) for g in stage.gates]
        items += [("trigger", t.id, None) for t in session.runbook.triggers]
        results = week.results_for(session, stage, now)

        def tick() -> None:
            for what, name, in_stage in items:
                readings.points(what, name, in_stage, current.entered_at, now)

        def baseline() -> None:
            judge_stage(session.runbook, stage, results, now)

        base = week.best_of(baseline)
        cost = week.best_of(tick, repeat=5, inner=3)
        points = sum(len(readings.points(w, n, s)) for w, n, s in items)
        print(f"\n{label}: {evaluations:,} evaluations over {week.DAYS:g} days")
        print(f"  {len(readings.runs):,} runs and {points:,} points held by the trends")
        print(
            f"  held in memory {held / 1e6:8.1f} MB  vs the file on disk {size / 1e6:.1f} MB"
            f"  = {held / size:.2f}×"
        )
        print(
            f"  first read     {first_read * 1e3:8.0f} ms  vs read_evidence"
            f" {full_read * 1e3:.0f} ms"
            f"  = {first_read / full_read:.2f}×"
        )
        print(
            f"  trend tick     {cost * 1e3:8.1f} ms  vs judge_stage {base * 1e3:.2f} ms"
            f"  = {cost / base:.1f}× ({len(items)} gates and triggers)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    measure("a quiet week", flapping=False)
    measure("a week with one gate flapping at every evaluation", flapping=True)
