"""What `cutover report` costs on a week of evidence (the shipped runbook's canary, every gate
and query trigger evaluated every 30 s by a watcher, a WAIT blip now and then, a trigger
firing for a while each day: console_evidence's week). The whole command, as the operator
runs it (a process: start, read the record, draw, write the HTML), against the same run's
baseline, `cutover journal --verify` (a process that starts and reads the journal, not the
evidence: what any command pays before its own work), round by round, interleaved.

Two rows each: wall time (the goal, issue #19: 2 s or less) and the CPU time the process
used (user + system, from the kernel's account of the child): on a shared machine the wall
time grows with the load, the CPU time much less, so it says whether a change made the
report cheaper. The load average is printed with the table. Then the same week with the
journal's key set (every evidence line's MAC checked, as a team that follows the advice to
set CUTOVER_JOURNAL_KEY has it), lines signed as cutover writes them.

Run: .venv/bin/python bench/report.py   [ROUNDS=5] [DAYS=7]
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_evidence import DAYS, T0, a_week, world  # noqa: E402

from cutover.record.evidence import decode_run, encode_run  # noqa: E402

GOAL_S = 2.0
KEY = "bench-report-key-0123456789abcdef"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:])} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def signed(path: Path, key: bytes) -> None:
    """The evidence file's lines as a watcher with the journal's key writes them."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    path.write_bytes(b"".join(encode_run(decode_run(line), key) for line in lines))


def vouched(runbook, environ: dict[str, str]) -> None:
    from cutover.judge.session import Session
    from cutover.record.events import Kind
    from cutover.record.journal import Journal

    current, _ = Session(runbook, environ).state()
    problem = current.chain
    assert problem is not None, "an unkeyed journal read with a key is a break to vouch for"
    end = T0 + timedelta(days=DAYS)
    journal = Journal(runbook.journal_path, actor="bench", host="box", clock=lambda: end,
                      key=KEY.encode())  # fmt: skip
    journal.append(
        Kind.CHAIN_ACCEPTED,
        problem=problem.summary,
        problem_line=problem.line,
        problem_seq=problem.seq,
        detail=problem.detail,
        note="bench: keyed from here",
    )


def measured(folder: Path, env: dict[str, str], rounds: int, what: str, size: float) -> list:
    from fixtures import Row, Samples

    cli = [sys.executable, "-m", "cutover.cli", "--runbook", str(folder / "runbook.toml")]
    report = [*cli, "report", "-o", str(folder / "report.html")]
    verify = [*cli, "journal", "--verify"]
    wall, base_wall, cpu, base_cpu = Samples(), Samples(), Samples(), Samples()
    timed(report, env, folder)  # bytecode and the font cache, once
    for _ in range(rounds):
        took, used = timed(report, env, folder)
        wall.add(took)
        cpu.add(used)
        took, used = timed(verify, env, folder)
        base_wall.add(took)
        base_cpu.add(used)
    html = (folder / "report.html").stat().st_size
    name = f"cutover report, {DAYS:g} days ({size / 1e6:.0f} MB){what}"
    return [
        Row(
            f"{name}: wall",
            wall,
            base_wall,
            "journal --verify",
            unit="s",
            goal=f"≤ {GOAL_S:g} s",
            met=wall.median <= GOAL_S,
            note=f"HTML {html / 1e3:.0f} kB; n={rounds}",
        ),
        Row(f"{name}: CPU", cpu, base_cpu, "journal --verify", unit="s", note=f"n={rounds}"),
    ]


def table_rows(rounds: int) -> list:
    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-report-"))
    try:
        session = world(folder)
        current, _ = session.state()
        a_week(session, session.runbook.stage(current.stage_id))
        size = session.evidence_path.stat().st_size
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
        env["USER"] = "bench"
        rows = measured(folder, env, rounds, "", size)
        # Keyed: every evidence line signed; the journal, begun without the key, vouched
        # for under it as `journal --accept-break` does, dated at the week's end (dated now,
        # it would stretch the record, and the report with it, to today).
        signed(session.evidence_path, KEY.encode())
        keyed = {**env, "CUTOVER_JOURNAL_KEY": KEY}
        vouched(session.runbook, keyed)
        rows += measured(folder, keyed, rounds, ", keyed", session.evidence_path.stat().st_size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> None:
    from fixtures import print_table

    rounds = int(os.environ.get("ROUNDS", "5"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print_table(table_rows(rounds), title=f"cutover report: {rounds} rounds (load {load})")


if __name__ == "__main__":
    main()
