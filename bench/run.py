"""Benchmarks, run on demand (`make bench`): each is reported as a ratio against a baseline
measured in the same run on the same machine, never as absolute seconds to assert on.

- journal replay (read, verify the chain, fold into state) vs plain json.loads of each line:
  what the hash chain and the replay cost over the cheapest possible read;
- journal tail_since(seq) after one new event vs a full read: what a console polling every
  second pays on day 7 of a cutover;
- splitting a long .sql file into statements vs a naive str.split(";").
- memory: peak allocation of a replay vs the journal's size on disk.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cutover import runbook, sqlfile, state  # noqa: E402
from cutover.journal import Journal  # noqa: E402

EVENTS = 5_000


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def build_journal(folder: Path) -> Journal:
    """A week of an intense cutover: sign-offs, advances and rollbacks, EVENTS in all.
    Written directly (no fsync per line) since we time reading, not writing."""
    clock_start = datetime(2026, 11, 1, tzinfo=UTC)
    tick = [0]

    def clock() -> datetime:
        tick[0] += 1
        return clock_start + timedelta(seconds=tick[0] * 60)

    journal = Journal(folder / "journal.jsonl", actor="bench", host="bench", clock=clock)
    import os

    real_fsync = os.fsync
    os.fsync = lambda fd: None  # building the fixture only
    try:
        n = 0
        while n < EVENTS:
            journal.append(
                "signoff",
                stage="prerequisites",
                step="rlm_healthy",
                visit=1,
                note="x" * 40,
                override=False,
                probe=None,
            )
            journal.append(
                "advance.intent",
                action=f"a{n}",
                from_stage="prerequisites",
                to_stage="canary",
                from_percent=0,
                to_percent=10,
                reason="",
            )
            journal.append(
                "advance.done", action=f"a{n}", flag_percent=10, verified="ok", took_s=1.0
            )
            journal.append(
                "rollback.intent",
                action=f"r{n}",
                from_stage="canary",
                to_stage="prerequisites",
                from_percent=10,
                to_percent=0,
                reason="drill",
            )
            journal.append(
                "rollback.done", action=f"r{n}", flag_percent=0, verified="ok", took_s=1.0
            )
            n += 5
    finally:
        os.fsync = real_fsync
    return journal


def main() -> None:
    book = runbook.load(ROOT / "runbook.toml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        journal = build_journal(Path(tmp))
        raw = journal.path.read_bytes()

        def baseline_read():
            return [json.loads(line) for line in raw.splitlines()]

        def replay():
            # A fresh Journal, as a CLI command has: a long-lived one reads only what is new.
            return state.replay(book, Journal(journal.path).read().events)

        base = best_of(baseline_read)
        ours = best_of(replay)
        rows.append(("journal replay vs json.loads per line", ours, base))

        journal.tail_since(0)
        last = journal.read().events[-1].seq
        journal.append(
            "signoff",
            stage="canary",
            step="memory_stable",
            visit=2,
            note="",
            override=False,
            probe=None,
        )
        tail = best_of(lambda: journal.tail_since(last))
        full = best_of(lambda: Journal(journal.path).read())
        rows.append(("tail_since after one event vs full read", tail, full))

        tracemalloc.start()
        replay()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        mem_ratio = peak / len(raw)

    source = (
        "\n".join(
            (ROOT / "queries" / f).read_text()
            for f in sorted(p.name for p in (ROOT / "queries").glob("*.sql"))
        )
        * 50
    )
    ours = best_of(lambda: sqlfile.split_statements(source))
    base = best_of(lambda: [s for s in source.split(";") if s.strip()])
    rows.append(("split .sql into statements vs str.split(';')", ours, base))

    print(f"{'benchmark':<48} {'ours':>10} {'baseline':>10} {'ratio':>8}")
    for name, ours, base in rows:
        print(f"{name:<48} {ours * 1e3:>8.2f}ms {base * 1e3:>8.2f}ms {ours / base:>7.3g}×")
    print(
        f"{'replay peak memory vs journal size on disk':<48} {'':>10} {'':>10} {mem_ratio:>7.1f}×"
    )
    print(
        f"({EVENTS:,} journal events, {len(raw) / 1e6:.1f} MB; "
        f"best of 5 runs each; python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main()
