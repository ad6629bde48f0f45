"""What `cutover report` costs on a week of evidence (the shipped runbook's canary, every gate
and query trigger evaluated every 30 s by a watcher, a WAIT blip now and then, a trigger
firing for a while each day: console_evidence's week). The whole command, as the operator
runs it (a process: start, read the record, draw, write the HTML), against the same run's
baseline, `cutover journal --verify` (a process that starts and reads the record), round by
round. Goal (issue #19): the report in 2 s or less.

Run: .venv/bin/python bench/report.py   [ROUNDS=5] [DAYS=7]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_evidence import DAYS, a_week, world  # noqa: E402

GOAL_S = 2.0


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:])} failed: {done.stderr.strip()}")
    return took


def table_rows(rounds: int) -> list:
    from fixtures import Row, Samples

    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-report-"))
    try:
        session = world(folder)
        current, _ = session.state()
        a_week(session, session.runbook.stage(current.stage_id))
        size = session.evidence_path.stat().st_size
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
        env["USER"] = "bench"
        cli = [sys.executable, "-m", "cutover.cli", "--runbook", str(folder / "runbook.toml")]
        report = [*cli, "report", "-o", str(folder / "report.html")]
        verify = [*cli, "journal", "--verify"]
        ours, base = Samples(), Samples()
        timed(report, env, folder)  # bytecode and the font cache, once
        for _ in range(rounds):
            ours.add(timed(report, env, folder))
            base.add(timed(verify, env, folder))
        html = (folder / "report.html").stat().st_size
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    median = sorted(ours.values)[len(ours.values) // 2]
    return [
        Row(
            f"cutover report, {DAYS:g} days of evidence ({size / 1e6:.0f} MB)",
            ours,
            base,
            "journal --verify",
            unit="s",
            goal=f"≤ {GOAL_S:g} s",
            met=median <= GOAL_S,
            note=f"HTML {html / 1e3:.0f} kB",
        )
    ]


def main() -> None:
    from fixtures import print_table

    rounds = int(os.environ.get("ROUNDS", "5"))
    print_table(table_rows(rounds), title=f"cutover report: {rounds} rounds")


if __name__ == "__main__":
    main()
