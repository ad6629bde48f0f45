"""The journal and the .sql reader against the cheapest thing that does the same job, in the
same run, interleaved round by round:

- a fresh replay (read, verify the chain, fold into the state) against json.loads of every
  line: what the hash chain and the fold cost over reading at all;
- a long-lived journal reading one new event against reading just the new bytes and
  json.loads of that one line: what an incremental reader costs over the least any
  incremental reader must do (the old row compared it with a full re-read: a straw man);
- splitting the shipped .sql files into statements against Postgres's own scanner doing the
  same (pglast.split without the parser; the old row compared with str.split(';'), which
  splits inside strings and comments: a straw man);
- a replay's peak memory against the journal's size on disk.

Run: .venv/bin/python bench/journal.py   [ROUNDS=7] [EVENTS=5000]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import ROOT, Row, Samples, print_table, runbook_copy, write_journal

from cutover.record import state
from cutover.record.journal import Journal
from cutover.runbook import loader as runbook
from cutover.runbook import sqlfile

EVENTS = int(os.environ.get("EVENTS", "5000"))


def best(fn, inner: int = 1) -> float:
    """Seconds per call of `fn`, the best of three batches of `inner` calls."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - started) / inner)
    return min(times)


def measure(rounds: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        book = runbook.load(runbook_copy(folder))
        path = folder / "journal.jsonl"
        write_journal(path, EVENTS)
        raw = path.read_bytes()

        def json_lines() -> list:
            return [json.loads(line) for line in raw.splitlines()]

        def replay() -> object:
            return state.replay(book, Journal(path).read().events)

        # One reader kept, as the console keeps it; a writer appends one event per round.
        reader = Journal(path)
        reader.read()
        writer = Journal(path, actor="other", host="bench")

        def append_one() -> int:
            writer.append("probe.ran", n=1)
            return path.stat().st_size

        def incremental() -> float:
            append_one()
            started = time.perf_counter()
            reader.read()
            return time.perf_counter() - started

        def new_bytes_only() -> float:
            before = path.stat().st_size
            append_one()
            started = time.perf_counter()
            with path.open("rb") as f:
                f.seek(before)
                [json.loads(line) for line in f.read().splitlines() if line]
            reader.read()  # keep the reader's cursor at the end (not timed)
            return time.perf_counter() - started

        source = "\n".join(
            p.read_text(encoding="utf-8") for p in sorted((ROOT / "queries").glob("0*.sql"))
        )
        import pglast

        replays, loads = Samples(), Samples()
        tails, minimal = Samples(), Samples()
        ours_split, pg_split = Samples(), Samples()
        for _ in range(rounds):
            replays.add(best(replay))
            loads.add(best(json_lines))
            tails.add(min(incremental() for _ in range(5)))
            minimal.add(min(new_bytes_only() for _ in range(5)))
            sqlfile._split_once.cache_clear()
            ours_split.add(best(lambda: sqlfile.split_statements(source), 20))
            pg_split.add(best(lambda: pglast.split(source, with_parser=False), 20))
        tracemalloc.start()
        replay()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return [
        Row(
            f"journal replay, {EVENTS:,} events (fresh process)",
            replays,
            loads,
            "json.loads per line",
            unit="ms",
            note=f"{len(raw) / 1e6:.1f} MB on disk; replay's peak memory "
            f"{peak / len(raw):.1f}× the file",
        ),
        Row(
            "journal: long-lived read of 1 new event",
            tails,
            minimal,
            "read new bytes+loads",
            unit="µs",
        ),
        Row(
            "split the shipped .sql files into statements",
            ours_split,
            pg_split,
            "Postgres's scanner",
            unit="ms",
            note="ours also keeps each statement's title, help and position",
        ),
    ]


def main() -> None:
    print_table(measure(int(os.environ.get("ROUNDS", "7"))))


if __name__ == "__main__":
    main()
