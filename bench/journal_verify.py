"""What verifying the journal costs, as ratios against a baseline measured in the same run:
reading the file and json.loads of each line (the cheapest read that still looks at every
event). Run on demand: `.venv/bin/python bench/journal_verify.py [EVENTS ...]`.

- a fresh process (every CLI command) verifies the whole chain once: Journal.read(), and
  Session.state() (read, verify, fold into the state) with no checkpoint yet, and then
  from the checkpoint the first one left (only the events after it: #20);
- a long-lived Journal (the console polls every second) verifies only what is new: a read
  with nothing new, a read after one new event, and Session.state() on top;
- an append (write, fsync, head record renamed into place) against a bare write + fsync.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from fixtures import write_journal  # noqa: E402

from cutover.judge.session import Session  # noqa: E402
from cutover.record import checkpoint  # noqa: E402
from cutover.record.journal import Journal  # noqa: E402
from cutover.record.store.files import FilesStore  # noqa: E402
from cutover.runbook import loader as runbook  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(events: int, book: runbook.Runbook, folder: Path) -> list[tuple[str, float, float]]:
    """Each measure with its own baseline: a fresh read against json.loads of every line
    (the cheapest read that still looks at every event); a long-lived read with nothing
    new against one os.stat of the file (the cheapest correct way to learn that nothing
    changed: comparing it with parsing every line flattered the poll)."""
    path = folder / f"journal-{events}.jsonl"
    if not path.exists():
        write_journal(path, events, at_stage="prerequisites")
    return timings(path, book)


def timings(path: Path, book: runbook.Runbook) -> list[tuple[str, float, float]]:
    def baseline() -> list:
        return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]

    base = best_of(baseline)
    stat = best_of(lambda: os.stat(path), 20)
    rows = [("fresh read + verify", best_of(lambda: Journal(path).read()), base)]

    kept = checkpoint.checkpoint_path(path)

    def fresh_state(from_checkpoint: bool = False):
        if not from_checkpoint:
            kept.unlink(missing_ok=True)  # the first command after the events were written
        session = Session(book, {"USER": "bench"})
        session.journal = Journal(path, actor="bench")
        session.store = FilesStore(session.journal)  # its checkpoint beside that journal
        return session.state()

    rows.append(("fresh Session.state() (verify + replay)", best_of(fresh_state), base))
    fresh_state()  # leaves the checkpoint every later command reads on from (#20)
    rows.append(
        (
            "fresh Session.state() from its checkpoint",
            best_of(lambda: fresh_state(from_checkpoint=True)),
            base,
        )
    )

    console = Session(book, {"USER": "bench"})
    console.journal = Journal(path, actor="bench")
    console.state()
    rows.append(("long-lived read, nothing new", best_of(console.journal.read, 20), stat))
    rows.append(("long-lived Session.state(), nothing new", best_of(console.state, 20), stat))
    writer = Journal(path, actor="other")

    def one_more():
        writer.append("probe.ran", n=1)
        return console.state()

    rows.append(("append one + long-lived Session.state()", best_of(one_more, 10), base))
    return rows


def append_cost(folder: Path) -> tuple[float, float]:
    """One append with everything that makes it durable and checkable, against writing the
    same bytes to a file and fsyncing it."""
    journal = Journal(folder / "append.jsonl", actor="bench", host="bench")
    journal.append("probe.ran", n=0)
    ours = best_of(lambda: journal.append("probe.ran", n=1), 20)
    line = journal.path.read_bytes().split(b"\n")[-2] + b"\n"
    fd = os.open(folder / "bare.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:

        def bare():
            os.write(fd, line)
            os.fsync(fd)

        base = best_of(bare, 20)
    finally:
        os.close(fd)
    return ours, base


def table_rows(events: int = 50_000, rounds: int = 3) -> list:
    """For the table of `make bench`: a fresh verify against json.loads of every line, and a
    long-lived poll with nothing new against one os.stat; `rounds` samples of each (the
    journal is built once: building it is the slow part), each the best of several runs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import Row, Samples

    book = runbook.load(ROOT / "runbook.toml")
    wanted = (
        ("fresh read + verify", f"journal verify, {events:,} events (fresh process)", "ms",
         "json.loads per line"),
        ("long-lived Session.state(), nothing new", "console's journal poll, nothing new", "µs",
         "one os.stat"),
    )  # fmt: skip
    ours = {name: Samples() for name, *_ in wanted}
    base = {name: Samples() for name, *_ in wanted}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            found = {name: (o, b) for name, o, b in measure(events, book, Path(tmp))}
            for name, *_ in wanted:
                ours[name].add(found[name][0])
                base[name].add(found[name][1])
    return [
        Row(shown, ours[name], base[name], what, unit=unit, note=f"n = {rounds} rounds")
        for name, shown, unit, what in wanted
    ]


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [5_000, 50_000]
    book = runbook.load(ROOT / "runbook.toml")
    print(f"{'events':>7}  {'what':<42} {'ours':>10} {'baseline':>10} {'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for events in sizes:
            size = None
            for name, ours, base in measure(events, book, Path(tmp)):
                print(
                    f"{events:>7}  {name:<42} {ours * 1e3:>8.2f}ms {base * 1e3:>8.2f}ms "
                    f"{ours / base:>7.3g}×"
                )
                size = (Path(tmp) / f"journal-{events}.jsonl").stat().st_size
            print(f"{'':>7}  ({size / 1e6:.1f} MB on disk)")
        ours, base = append_cost(Path(tmp))
        print(
            f"{'':>7}  {'append (+ head record) vs write + fsync':<42} {ours * 1e3:>8.2f}ms "
            f"{base * 1e3:>8.2f}ms {ours / base:>7.3g}×"
        )
    print(
        "(baseline, same run: read the file and json.loads each line; for the long-lived "
        "reads with nothing new, one os.stat; best of 5 runs, 20 for the cheap ones; "
        f"python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
