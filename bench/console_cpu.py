"""The console's own CPU per second of wall time, every panel of the shipped runbook refreshing
at 1 s (plus the 10,000-row log shifting by one row a second) on the bench database and the
demo's platforms, headless, in this process (Postgres's work is in its own processes and not
counted). Baseline, interleaved round by round: a bare Textual app repainting one line a
second. On two shared cores, every CPU-second the console spends per second is a second the
database and the operator's keys wait for.

PROFILE=1 also prints where the console's time went in its last window (cProfile, by own
time): what to move off the loop or stop doing.

Run: .venv/bin/python bench/console_cpu.py   [ROUNDS=3] [CPU_S=20] [BENCH_ROWS=100000]
     [PROFILE=1] [PROFILE_OUT=file: the profile, for pstats callers]
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import BigDatabase, Platform, Row, Samples, print_table, runbook_copy, say, scratch
from garbage import bare_app


async def window(pilot, seconds: float, profile: cProfile.Profile | None) -> float:
    """CPU seconds this process spent per wall second over `seconds`."""
    wall, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    try:
        await pilot.pause(seconds)
    finally:
        if profile is not None:
            profile.disable()
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def console_round(
    book: Path, env: dict[str, str], seconds: float, profile
) -> tuple[float, int]:
    """(CPU seconds per wall second, answers taken in) over the window. On a loaded machine
    the database answers fewer queries a second and the console has less to do: CPU per
    answer is the figure the load moves least."""
    from cutover.judge.session import Session
    from cutover.runbook import loader
    from cutover.tui.app import CutoverApp

    app = CutoverApp(Session(loader.load(book), env), probe_poll_s=None)
    answers: list[str] = []
    taken_in = app.refresher.finished  # called once per answer the console takes in

    def counted(query_id: str) -> None:
        answers.append(query_id)
        taken_in(query_id)

    app.refresher.finished = counted  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(8)  # every panel mounted and answered once
        answers.clear()
        per_second = await window(pilot, seconds, profile)
        return per_second, len(answers)


async def bare_round(seconds: float) -> float:
    async with bare_app().run_test(size=(160, 48)) as pilot:
        await pilot.pause(2)
        return await window(pilot, seconds, None)


def main() -> None:
    rounds = int(os.environ.get("ROUNDS", "3"))
    seconds = float(os.environ.get("CPU_S", "20"))
    database = BigDatabase(int(os.environ.get("BENCH_ROWS", "100000"))).start()
    # By CPU time: the loop's idle waits (epoll) and the kernel's are not the console's work.
    profile = cProfile.Profile(time.process_time) if os.environ.get("PROFILE") else None
    try:
        rows = measure(rounds, seconds, database, profile)
    finally:
        database.stop()
    print_table(
        rows,
        title=f"the console's own CPU, {seconds:.0f} s windows, n={rounds}; "
        f"load {Path('/proc/loadavg').read_text().split()[0]}",
    )
    if profile is not None:
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).sort_stats("tottime")
        stats.print_stats(30)
        stats.sort_stats("cumulative").print_stats("cutover", 40)
        print(text.getvalue())
        if os.environ.get("PROFILE_OUT"):  # for pstats' callers/callees, when asked
            profile.dump_stats(os.environ["PROFILE_OUT"])


def measure(
    rounds: int, seconds: float, database: BigDatabase, profile: cProfile.Profile | None = None
) -> list[Row]:
    """Interleaved rounds of the bare app and the console; `profile` watches the last."""
    platform = Platform().start()
    platform.set_flag(10)
    ours, bare, per_answer = Samples(), Samples(), Samples()
    with scratch("cutover-bench-cpu-") as folder:
        book = runbook_copy(folder, every_s=1, shifting=True)
        env = {**os.environ, **platform.env(), "CUTOVER_DATABASE_URL": database.dsn}
        try:
            for n in range(rounds):
                bare.add(asyncio.run(bare_round(seconds)))
                last = profile if n == rounds - 1 else None
                cpu, answered = asyncio.run(console_round(book, env, seconds, last))
                ours.add(cpu)
                per_answer.add(cpu * seconds / max(1, answered))  # seconds: the table shows ms
                say(
                    f"round {n + 1}: console {cpu:.3f} ({answered} answers, "
                    f"{per_answer.values[-1] * 1e3:.2f} ms each), bare {bare.values[-1]:.3f}"
                )
        finally:
            platform.stop()
    return [
        Row(
            f"console CPU per wall second, every panel at 1 s ({seconds:g} s windows)",
            ours,
            bare,
            "bare Textual app, 1 repaint/s",
            unit="s",
        ),
        Row(
            "  the same per query answer taken in (all the console's work / answers)",
            per_answer,
            unit="ms",
        ),
    ]


if __name__ == "__main__":
    main()
