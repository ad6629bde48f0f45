"""Team mode (#18): a simulated week on the Postgres store. Five consoles and two watchers
evaluate the canary's gates and every trigger each 30 s of a clock that runs a day in
seconds, through the same evidence writer they use (runs flushed as they grow); people sign
off and raise now and then. Each day: the rows and bytes the store gained, and what each read
a console or a watcher makes costs on that day's store: the last day's evidence (holds,
`status`), the evidence feed and the journal with nothing new (a process not listening asks
every time), the stage's baseline. Flat from day 1 to day 7 is the indexes at work.

Run: `.venv/bin/python bench/store_week.py [DAYS]` (about a minute a day here).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from fixtures import _embedded_postgres  # noqa: E402

from cutover.judge.session import Session  # noqa: E402
from cutover.record import evidence, snapshots  # noqa: E402
from cutover.record.store import pgschema  # noqa: E402
from cutover.runbook import loader  # noqa: E402
from cutover.sources.results import QueryResult  # noqa: E402

EVALUATORS = [f"console-{n}" for n in range(1, 6)] + ["watch-1", "watch-2"]
STEP_S = 30


def cost(fn, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    days = int(argv[0]) if argv else 7
    ep = _embedded_postgres()
    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-week-"))
    server = ep.get_server(folder / "pg", cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        pgschema.init_now(dsn, "cutover", None, str)
        (folder / "queries").symlink_to(ROOT / "queries")
        text = (ROOT / "runbook.toml").read_text(encoding="utf-8")
        extra = '\n[store]\nkind = "postgres"\ndsn_env = "BENCH_STATE_URL"\n'
        (folder / "runbook.toml").write_text(text + extra, encoding="utf-8")
        book = loader.load(folder / "runbook.toml")
        env = {"USER": "bench", "BENCH_STATE_URL": dsn, "PATH": os.environ.get("PATH", "")}
        stage = book.stage("canary")
        names = [(evidence.GATE, g.id) for g in stage.gates]
        names += [(evidence.TRIGGER, t.id) for t in book.triggers]
        start = datetime(2026, 3, 2, tzinfo=UTC)
        now = [start]
        people = Session(book, env)
        writers = {}
        for by in EVALUATORS:
            session = Session(book, env)
            writers[by] = session.evidence_store(by, clock=lambda: now[0])
        reader = Session(book, env)
        feed = reader.store.evidence_feed()
        results = {"success_rate": QueryResult("success_rate", ("x",), ((1,),), start)}
        people.store.take_snapshot("canary", 1, snapshots.EXIT, results, start)
        print(
            f"{len(EVALUATORS)} evaluators × {len(names)} gates and triggers every {STEP_S} s; "
            "reads: median of 20, ms"
        )
        print(
            f"{'day':>3} {'evidence rows':>14} {'events':>7} {'MB total':>9} "
            f"{'last 24 h':>10} {'feed, none new':>15} {'journal, none new':>18} {'baseline':>9}"
        )
        before_rows = before_bytes = 0
        for day in range(1, days + 1):
            for step in range(86400 // STEP_S):
                now[0] = start + timedelta(days=day - 1, seconds=step * STEP_S)
                for n, writer in enumerate(writers.values()):
                    # One gate flips now and then: runs end and begin as in life.
                    flip = (step // 240 + n) % 17 == 0
                    writer.record(
                        evidence.Evaluation(
                            what,
                            name,
                            "canary",
                            "wait" if flip and what == evidence.GATE else "pass",
                            99.0,
                            None,
                            "ok",
                            "sha",
                            now[0],
                        )
                        for what, name in names
                    )
                if step % 120 == 0:
                    people.journal.append("note", note=f"day {day} step {step}")
            for writer in writers.values():
                writer.flush()
            feed.read()
            reader.journal.read()
            stats = _sizes(reader)
            since = now[0] - timedelta(days=1)
            last_day = cost(lambda since=since: reader.read_evidence(since), 5)
            feed_none = cost(feed.read)
            journal_none = cost(reader.journal.read)
            base = cost(lambda: reader.store.baseline("canary"))
            rows, size = stats
            print(
                f"{day:>3} {rows:>8} (+{rows - before_rows:>5}) {stats_events(reader):>7} "
                f"{size / 1e6:>9.1f} {last_day * 1e3:>10.1f} {feed_none * 1e3:>15.2f} "
                f"{journal_none * 1e3:>18.2f} {base * 1e3:>9.2f}"
            )
            print(f"    (+{(size - before_bytes) / 1e6:.1f} MB that day)")
            before_rows, before_bytes = rows, size
    finally:
        server.cleanup()


def _sizes(session: Session) -> tuple[int, int]:
    store = session.store

    async def fetch(conn):
        return await conn.fetchrow(
            "SELECT (SELECT count(*) FROM cutover.evidence), "
            "(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'cutover' AND c.relkind = 'r')"
        )

    row = store.link.call(fetch)
    return int(row[0]), int(row[1])


def stats_events(session: Session) -> int:
    return len(session.journal.read().events)


if __name__ == "__main__":
    main(sys.argv[1:])
