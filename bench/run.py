"""`make bench`: every benchmark, one table. Each row sets what cutover does against a
baseline measured in the same run, on the same machine, interleaved with it round by round
(a noisy neighbour hits both alike), several rounds, min / median / max; the ratio is taken
per round. A goal, where the issue set one, is judged on the median.

Parts (each also runs alone): check_psql.py (check vs psql -f on 1,000,000 rows),
console.py (first paint, y → PATCH, keys and stalls, bytes, RSS soak; in tmux), rollback.py
(time to effect: y → production serving 0 % by instant rollback with 45 s builds, and the
fallback by build against today's), journal.py, journal_verify.py, status.py (`status
--json` at 50,000 journal events against 1: time and peak RSS), panel.py,
console_evidence.py, report.py (cutover report on a week of evidence), store.py (team
mode: opening a 50,000-event cutover on Postgres against files, and another host's append
seen here by its NOTIFY), team.py (team mode: a sign-off by another process seen on a
second console's screen in tmux, against tmux's own echo round trip), console_cpu.py (the
console's own CPU per second at 1 s refresh against a bare Textual app),
rollback_silent_store.py (a rollback with the state store gone silent: to the flag, against
the store answering).

The console's rows and check's run twice: on the million rows, and again on `cutover demo`'s
own database (fixtures.DemoData: its schema on its clock, its traffic flowing), in a second
table, since a console fast on one shape of data can still stall on the other.

Run: .venv/bin/python bench/run.py   [ROUNDS=5] [KEYS_S=30] [SOAK_S=900] [BENCH_ROWS=1000000]
     [BENCH_PGDATA=dir: keep the database between runs] [ONLY=check,console,micro,store,demo]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_psql
import console
import console_cpu
import console_evidence
import journal
import journal_verify
import panel
import report
import rollback
import rollback_silent_store
import status
import store
import team
from fixtures import (
    BigDatabase,
    DemoData,
    Row,
    compile_bytecode,
    print_table,
    say,
    scratch,
    sweep_sockets,
)


def main() -> None:
    rounds = int(os.environ.get("ROUNDS", "5"))
    keys_s = float(os.environ.get("KEYS_S", "30"))
    soak_s = float(os.environ.get("SOAK_S", "900"))
    only = set(filter(None, os.environ.get("ONLY", "").split(","))) or {
        "check",
        "console",
        "micro",
        "store",
        "demo",
    }
    started = time.monotonic()
    rows: list[Row] = []
    sweep_sockets()  # left by a run killed half-way
    compile_bytecode()
    database = BigDatabase().start() if only & {"check", "console"} else None
    try:
        if "check" in only:
            say("check against psql…")
            rows += check_psql.measure(rounds, database)
        if "console" in only:
            with scratch() as folder:
                world = console.World(database, folder)
                try:
                    say("first paint…")
                    rows += console.first_paint(world, rounds)
                    say("y → PATCH…")
                    rows.append(console.rollback_latency(world, rounds, 0))
                    rows.append(console.rollback_latency(world, rounds, 5000))
                    say("y → production serving 0 % (instant; the fallback by build)…")
                    rows += rollback.measure(world, rounds)
                    say(f"keys and stalls, {keys_s:g} s…")
                    rows += console.keys_and_stalls(world, keys_s)
                    say(f"RSS soak, {soak_s / 60:g} min…")
                    rows += console.soak(world, soak_s)
                    say("the console's own CPU per second, headless…")
                    rows += console_cpu.measure(min(rounds, 3), 20.0, database)
                finally:
                    world.stop()
    finally:
        if database is not None:
            database.stop()
    if "micro" in only:
        say("journal, .sql, panel, evidence…")
        rows += journal.measure(max(rounds, 5))
        rows += journal_verify.table_rows(rounds=min(rounds, 3))
        say("status --json at 50,000 journal events against 1…")
        rows += status.table_rows(max(rounds, 5))
        rows += panel.measure(rounds)
        rows += console_evidence.table_rows(rounds)
        say("cutover report on a week of evidence…")
        rows += report.table_rows(rounds)
    if "store" in only:
        say("team mode: the record on Postgres against files…")
        rows += store.table_rows(min(rounds, 3))
        say("team mode: a sign-off on another console's screen, in tmux…")
        rows += team.table_rows()
        say("team mode: a rollback with the store gone silent…")
        rows += rollback_silent_store.table_rows(min(rounds, 3))
    demo_rows = on_the_demo_database(rounds, keys_s, soak_s) if "demo" in only else []
    minutes = (time.monotonic() - started) / 60
    print_table(
        rows,
        title=(
            f"cutover benchmarks: {rounds} rounds each (interleaved with their baselines), "
            f"{os.cpu_count()} cores, python {platform.python_version()}, "
            f"load average at the end {os.getloadavg()[0]:.2f}, {minutes:.0f} min"
        ),
    )
    if demo_rows:
        print()
        print_table(demo_rows, title="the same on `cutover demo`'s database (its traffic flowing)")


def on_the_demo_database(rounds: int, keys_s: float, soak_s: float) -> list[Row]:
    """check, the first paint, y → PATCH, keys and stalls and the soak, on the demo's data."""
    rows: list[Row] = []
    database = DemoData().start()
    try:
        say("the demo's database: check against psql…")
        rows += check_psql.measure(rounds, database)
        with scratch() as folder:
            world = console.World(database, folder)
            try:
                say("the demo's database: first paint, y → PATCH…")
                rows += console.first_paint(world, rounds)
                rows.append(console.rollback_latency(world, rounds, 0))
                say(f"the demo's database: keys and stalls, {keys_s:g} s…")
                rows += console.keys_and_stalls(world, keys_s)
                say(f"the demo's database: RSS soak, {soak_s / 60:g} min…")
                rows += console.soak(world, soak_s)
            finally:
                world.stop()
    finally:
        database.stop()
    return rows


if __name__ == "__main__":
    main()
