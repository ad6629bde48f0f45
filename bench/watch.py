"""Benchmark, run on demand: the watcher's core through an accelerated week of evaluations.

The watcher runs on a manual clock over the shipped runbook (real durations: a 24 h hold, 1 h
max_gap, queries every 30 s to 5 min; a 12 h checkpoint added), with a file flag and the
demo's RLM service on loopback for the stage's probe. Its queries return RECORDED results:
each shipped query run once against an embedded Postgres holding the demo's 48 h of imports,
then replayed at each evaluation (a real Postgres cannot be made to live a week in a minute).
Every simulated day the script breaks things as a week of production does: the success rate
drops for an hour (a gate flip, a critical trigger firing and clearing, the hold restarting)
and the database is unreachable for ten minutes (reconnects with backoff, not-run results).

Reported as ratios against baselines measured in the same run: resident memory against the
process's own before the watcher starts, and each day's evidence bytes against the first
day's. Not a test: nothing here asserts; it prints.

    .venv/bin/python bench/watch.py [--days 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cutover.demo.rlm import RLMServer  # noqa: E402
from cutover.judge.session import Session  # noqa: E402
from cutover.record.journal import Journal  # noqa: E402
from cutover.runbook.loader import load  # noqa: E402
from cutover.sources import db  # noqa: E402
from cutover.sources.results import Cause, QueryResult  # noqa: E402
from cutover.traffic.flags import open_flag  # noqa: E402
from cutover.traffic.signoff import sign_off  # noqa: E402
from cutover.watch.watcher import ManualClock, Pace, Watcher  # noqa: E402

STEP_S = 30.0  # the clock moves by the shortest refresh: every cycle has something due
DAY = 86400.0
BAD_HOUR = (14 * 3600, 15 * 3600)  # seconds into each simulated day
OUTAGE = (3 * 3600, 3 * 3600 + 600)


TRACE = bool(os.environ.get("BENCH_TRACEMALLOC"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_runbook(folder: Path) -> Path:
    """The shipped runbook from the canary on: file flag, own journal, a 12 h checkpoint."""
    data = tomllib.loads((ROOT / "runbook.toml").read_text(encoding="utf-8"))
    for query in data["queries"].values():
        if "file" in query:  # an http query names a URL instead
            query["file"] = str(ROOT / query["file"])
    data["flag"] = {"kind": "file", "path": "flag-percent"}
    data["journal"] = {"path": "journal.jsonl"}
    data["stages"] = [s for s in data["stages"] if s["id"] != "prerequisites"]
    data["stages"][0]["checkpoint"] = "12h"
    (folder / "flag-percent").write_text("10\n")
    path = folder / "runbook.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


async def record_results(book, folder: Path) -> dict[str, QueryResult]:
    """Every query once, against an embedded Postgres with the demo's 48 h of imports."""
    import asyncpg

    from cutover.demo.database import DemoDatabase
    from cutover.demo.traffic import COLUMNS, backfill

    database = DemoDatabase(folder / "pg")
    dsn = await asyncio.to_thread(database.start)
    try:
        conn = await asyncpg.connect(dsn)
        done, processing = backfill(datetime.now(UTC), 30.0, random.Random(7))
        rows = done + [row for row, _ in processing]
        await conn.copy_records_to_table("user_profiles", records=rows, columns=COLUMNS)
        await conn.close()
        runner = db.QueryRunner(book.database, dsn)
        try:
            # http queries are fetched by the watcher itself (left unconfigured here, they
            # answer at once without a request)
            return {
                q: await runner.run(query)
                for q, query in book.queries.items()
                if query.kind != "http"
            }
        finally:
            await runner.aclose()
    finally:
        await asyncio.to_thread(database.stop)


class RecordedRunner:
    """The recorded results, as the day's script says: the bad hour's success rate, the
    outage's unreachable database."""

    def __init__(self, recorded: dict[str, QueryResult], clock: ManualClock, start: datetime):
        self.recorded = recorded
        self.clock = clock
        self.start = start
        self.queries = 0
        row = recorded["success_rate"].first_row() or {}
        total = int(row.get("total_imports") or 1000)
        self.bad_rate = replace(
            recorded["success_rate"],
            rows=(
                tuple(
                    {
                        "total_imports": total,
                        "successful_imports": int(total * 0.8),
                        "failed_imports": total - int(total * 0.8),
                        "stuck_imports": 0,
                        "in_flight_imports": 0,
                        "success_rate_pct": 80.0,
                    }.get(c)
                    for c in recorded["success_rate"].columns
                ),
            ),
        )

    def _in(self, window: tuple[int, int]) -> bool:
        into_day = (self.clock.now() - self.start).total_seconds() % DAY
        return window[0] <= into_day < window[1]

    async def run(self, query) -> QueryResult:
        self.queries += 1
        await asyncio.sleep(0)
        if self._in(OUTAGE):
            return QueryResult(query.id, error="connection refused", cause=Cause.UNREACHABLE)
        if query.id == "success_rate" and self._in(BAD_HOUR):
            return self.bad_rate
        return self.recorded[query.id]

    async def connect(self) -> None:
        if self._in(OUTAGE):
            raise db.DatabaseUnavailable("connection refused")

    async def aclose(self) -> None:
        pass


async def main(days: int, show: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="cutover-bench-watch-") as d:
        folder = Path(d)
        book = load(bench_runbook(folder))
        print("recording every query once against an embedded Postgres…", file=sys.stderr)
        recorded = await record_results(book, folder)
        with RLMServer() as rlm:
            env = {"CUTOVER_DATABASE_URL": "postgresql://bench@localhost/x", "RLM_URL": rlm.url}
            env["USER"] = "bench"
            start = datetime.now(UTC).replace(microsecond=0)
            clock = ManualClock(start)
            session = Session(book, env)
            session.journal = Journal(
                book.journal_path, actor="watch (bench)", clock=clock.now, redact=session.redact
            )
            alice = Session(book, {**env, "USER": "alice"})
            alice.journal = Journal(book.journal_path, actor="alice", clock=clock.now)
            await sign_off(alice, "memory_stable", note="bench")  # starts the canary's clock
            runner = RecordedRunner(recorded, clock, start)
            lines: list[str] = []
            watcher = Watcher(
                session,
                runner=runner,
                flag=open_flag(book.flag, env),
                out=lines.append,
                clock=clock,
                pace=Pace(),
            )
            evidence = session.evidence_path
            gc.collect()
            baseline = rss_bytes()
            if TRACE:
                import tracemalloc

                tracemalloc.start(12)
            await watcher.start()
            print(
                f"baseline RSS (before the watcher starts): {baseline / 2**20:.1f} MiB; "
                f"{days} simulated days, a cycle every {STEP_S:g} s of simulated time",
                file=sys.stderr,
            )
            print("day  RSS/baseline  RSS MiB  evidence bytes  /day 1  runs kept  lines  cycles/s")
            steps_per_day = int(DAY / STEP_S)
            size_before, day_one = 0, None
            for day in range(1, days + 1):
                started = time.perf_counter()
                for _ in range(steps_per_day):
                    clock.advance(STEP_S)
                    await watcher.cycle(settle=True)
                took = time.perf_counter() - started
                gc.collect()
                if TRACE:  # a diagnosis: what grew since the first day
                    import tracemalloc

                    snap = tracemalloc.take_snapshot()
                    if day == 1:
                        first_snap = snap
                    else:
                        for stat in snap.compare_to(first_snap, "traceback")[:3]:
                            print(stat, *stat.traceback.format()[-8:], sep="\n", file=sys.stderr)
                rss = rss_bytes()
                size = evidence.stat().st_size
                grown, size_before = size - size_before, size
                day_one = day_one or grown
                print(
                    f"{day:>3}  {rss / baseline:>12.3f}  {rss / 2**20:>7.1f}  {grown:>14,}  "
                    f"{grown / day_one:>6.2f}  {len(watcher.tail):>9}  {len(lines):>5}  "
                    f"{steps_per_day / took:>8.0f}"
                )
            await watcher.stop()
            if show:
                print("\n".join(lines), file=sys.stderr)
            print(
                f"{runner.queries:,} query results judged; {len(lines)} lines said in "
                f"{days} days; evidence {evidence.stat().st_size:,} bytes in all",
                file=sys.stderr,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--show", action="store_true", help="print what the watcher said")
    args = parser.parse_args()
    asyncio.run(main(args.days, args.show))
