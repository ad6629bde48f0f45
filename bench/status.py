"""`cutover status --json` on a long journal against the same command on a journal of one
event, in the same run, interleaved round by round: wall time and peak memory (the child's
resident high-water mark, VmHWM, read while it runs) of the whole process, as an operator
runs it.

The long journal's first command after its events were written replays them all and leaves
a checkpoint beside the journal; every later command reads only what follows it. The
rounds measure those later commands (a warm-up run goes first, untimed, for both
journals); the first command's cost is reported beside them, once.

Run alone: `.venv/bin/python bench/status.py [EVENTS] [ROUNDS]` (default 50,000 and 5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from fixtures import runbook_copy, write_journal  # noqa: E402

from cutover.record.journal import Journal  # noqa: E402

CUTOVER = [sys.executable, "-m", "cutover.cli"]


def run_status(
    book: Path, events: int, more_env: dict[str, str] | None = None
) -> tuple[float, float]:
    """One `cutover status --json`: seconds, and the child's peak RSS in MB. It exits 2 here
    (no flag token, no database: said in its JSON), so what it printed is checked instead."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "USER": "bench",
        "HOME": str(book.parent),
        "PYTHONPATH": str(ROOT / "src"),
        **(more_env or {}),
    }
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [*CUTOVER, "--runbook", str(book), "status", "--json"],
            env=env,
            stdout=out,
            stderr=err,
        )
        # The kernel's peak RSS of a child (wait4's ru_maxrss) starts at its parent's: a
        # child made by fork, or by vfork then exec, is charged the parent's memory at that
        # moment, and make bench's parent holds hundreds of MB by the time this runs. The
        # child's own memory's high-water mark (VmHWM) is read while it lives instead.
        peak_kb = 0
        while child.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(child.pid))
            time.sleep(0.002)
        took = time.perf_counter() - started
        returncode = child.returncode
        out.seek(0)
        err.seek(0)
        printed, said_err = out.read(), err.read().decode("utf-8", "replace")
    try:
        said = json.loads(printed)["journal"]["events"]
    except (ValueError, KeyError, TypeError):
        said = None
    if said != events:
        raise RuntimeError(f"status exited {returncode}: {said_err[-2000:]}")
    return took, peak_kb / 1024


def _vm_hwm_kb(pid: int) -> int:
    """The process's resident high-water mark now (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def measure(events: int, rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="cutover-bench-status-") as tmp:
        books = {}
        for name, n in (("long", events), ("one", 1)):
            folder = Path(tmp) / name
            books[name] = runbook_copy(folder)
            if n > 1:
                write_journal(folder / "journal.jsonl", n, at_stage="prerequisites")
            else:
                Journal(folder / "journal.jsonl", actor="bench", host="bench").append(
                    "probe.ran", n=1
                )
        sizes = {"long": events, "one": 1}
        first = {name: run_status(book, sizes[name]) for name, book in books.items()}
        found: dict[str, list[float]] = {
            "long_s": [],
            "one_s": [],
            "long_mb": [],
            "one_mb": [],
            "first_s": [first["long"][0]],
            "first_mb": [first["long"][1]],
        }
        for _ in range(rounds):
            for name in ("long", "one"):
                took, mb = run_status(books[name], sizes[name])
                found[f"{name}_s"].append(took)
                found[f"{name}_mb"].append(mb)
        return found


def table_rows(rounds: int, events: int = 50_000) -> list:
    from fixtures import Row, Samples

    f = measure(events, rounds)
    return [
        Row(
            f"status --json, {events:,} journal events",
            Samples(f["long_s"]),
            Samples(f["one_s"]),
            "the same at 1 event",
            goal="≤ 1.3×",
            ratio_goal=1.3,
            note=f"n = {rounds}; the first run after the events were written (no "
            f"checkpoint yet) {f['first_s'][0]:.2f} s",
        ),
        Row(
            f"status --json peak RSS, {events:,} events",
            Samples(f["long_mb"]),
            Samples(f["one_mb"]),
            "the same at 1 event",
            unit="n",
            goal="≤ 1.5×",
            ratio_goal=1.5,
            note=f"MB, n = {rounds}; first run {f['first_mb'][0]:.0f} MB",
        ),
    ]


def main(argv: list[str]) -> None:
    events = int(argv[0]) if argv else 50_000
    rounds = int(argv[1]) if len(argv) > 1 else 5
    f = measure(events, rounds)
    med = statistics.median
    print(
        f"status --json, {events:,} events: {med(f['long_s']):.3f} s, {med(f['long_mb']):.0f} MB"
        f"; 1 event: {med(f['one_s']):.3f} s, {med(f['one_mb']):.0f} MB (medians of {rounds}, "
        f"interleaved): {med(f['long_s']) / med(f['one_s']):.2f}× time, "
        f"{med(f['long_mb']) / med(f['one_mb']):.2f}× memory"
    )
    print(
        f"  first run after the events were written: {f['first_s'][0]:.3f} s, "
        f"{f['first_mb'][0]:.0f} MB; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  all: long {[round(x, 3) for x in f['long_s']]} one {[round(x, 3) for x in f['one_s']]}"
    )
    print(f"  MB: long {[round(x) for x in f['long_mb']]} one {[round(x) for x in f['one_mb']]}")


if __name__ == "__main__":
    main(sys.argv[1:])
