"""`cutover check` against `psql -f` of exactly the statements it runs, on 1,000,000
`user_profiles` rows (bench/fixtures.py builds them): both fresh processes, interleaved,
several rounds. The journal stands at the canary, so check judges the shipped runbook's
canary stage: its gates' and every trigger's queries. Its http queries (render_memory, and
rlm_health, whose URL the copy leaves without its default: the internet) are left
unconfigured, so they answer at once without a request; psql runs the SQL ones only.

Two rows: with the guard's memo warm (runbook/vetted.py: every query text vetted on an
earlier run), and cold, as the first run after a runbook edit is (an empty memo: every
text parsed afresh, pglast imported; the classes' compiled code, runbook/frozen.py, is kept,
as an edit leaves it).

On 2 cores shared with other work, wall time swings with the load (given at the start and
the end of the run); the CPU time the check process itself used (user+sys, its rows below)
moves much less, and is what start-up work costs.

Run: .venv/bin/python bench/check_psql.py   [ROUNDS=7] [BENCH_ROWS=1000000] [BENCH_PGDATA=dir]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (
    CUTOVER,
    PYTHON,
    BigDatabase,
    Row,
    Samples,
    bytecode_env,
    compile_bytecode,
    interleaved,
    print_table,
    psql,
    runbook_copy,
    scratch,
    timed,
    write_journal,
)

from cutover.runbook.frozen import FILE as FROZEN_FILE

WARMUP = 1  # interleaved()'s unrecorded first round

GOAL = 1.3
GOAL_COLD = 1.5
# Every http query's URL variable, unset: each then answers at once ("needs RLM_URL").
UNCONFIGURED = ("RENDER_API_URL", "RENDER_API_KEY", "RENDER_OWNER_ID", "RENDER_RLM_SERVICE_ID")


def statements(runbook_path: Path) -> tuple[str, list[str]]:
    """The SQL `check` runs for the journal's current stage, as one psql file (a parameter
    check leaves NULL is written as NULL), and the query ids."""
    from cutover.judge.check import queries_for
    from cutover.judge.session import Session
    from cutover.runbook import loader as runbook

    book = runbook.load(runbook_path)
    session = Session(book, {"USER": "bench"})
    current, _ = session.state()
    stage = book.stage(current.stage_id)
    wanted = [q for q in queries_for(book, stage) if book.queries[q].kind != "http"]
    text = []
    for query_id in wanted:
        sql = book.queries[query_id].sql.rstrip().rstrip(";")
        sql = re.sub(r"\$\d+", "NULL", sql)
        text.append(sql + ";\n")
    return "".join(text), wanted


def unconfigured_http(book: Path) -> None:
    """The copy's http queries without a default URL: rlm_health's falls back to the RLM on
    the internet, which made every check wait on a DNS lookup (and import the HTTP stack)
    that psql has no part in."""
    data = tomllib.loads(book.read_text(encoding="utf-8"))
    for query in data["queries"].values():
        if query.get("kind") == "http":
            query["url"] = re.sub(r"\$\{(\w+):-[^}]*\}", r"${\1}", query["url"])
    book.write_text(tomli_w.dumps(data), encoding="utf-8")


def timed_cpu(command: Sequence[str], env: dict[str, str], cpu: list[float]) -> float:
    """Wall seconds of one process, start to exit (as fixtures.timed); the CPU seconds it
    used (user+sys, its children's included) go to `cpu`."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu.append(usage.ru_utime + usage.ru_stime)
    return wall


def recorded(values: list[float]) -> Samples:
    return Samples(values[WARMUP:])


def measure(rounds: int, database: BigDatabase) -> list[Row]:
    compile_bytecode()
    with scratch() as folder:
        book = runbook_copy(folder)
        unconfigured_http(book)
        write_journal(folder / "journal.jsonl", 40, at_stage="canary")
        sql, wanted = statements(book)
        sql_file = folder / "check.sql"
        sql_file.write_text(sql, encoding="utf-8")
        env = bytecode_env()
        env.update({"CUTOVER_DATABASE_URL": database.dsn, "CUTOVER_RUNBOOK": str(book)})
        for name in (*UNCONFIGURED, "RLM_URL"):
            env.pop(name, None)
        # The memo in the scratch folder: warm after the unrecorded first round; a cold run
        # gets an empty one of its own.
        env["CUTOVER_CACHE_DIR"] = str(folder / "cache")

        cpu: dict[str, list[float]] = {"check": [], "cold": [], "psql": []}

        def cold() -> float:
            # An empty memo; the classes' code (runbook/frozen.py) is kept, as an edit to the
            # runbook leaves it: that file is the interpreter's and cutover's, not the runbook's.
            empty = Path(tempfile.mkdtemp(prefix="cache-", dir=folder))
            classes = folder / "cache" / FROZEN_FILE
            if classes.exists():
                shutil.copy2(classes, empty / FROZEN_FILE)
            return timed_cpu(ours, {**env, "CUTOVER_CACHE_DIR": str(empty)}, cpu["cold"])

        baseline = [psql(), "-X", "-q", "-d", database.dsn, "-f", str(sql_file), "-o", os.devnull]
        ours = [CUTOVER, "check"]
        python = [PYTHON, "-c", "pass"]
        imports = [PYTHON, "-c", "import cutover.cli.main"]
        load = [os.getloadavg()[0]]
        samples = interleaved(
            rounds,
            {
                "psql": lambda: timed_cpu(baseline, env, cpu["psql"]),
                "check": lambda: timed_cpu(ours, env, cpu["check"]),
                "cold": cold,
                "python": lambda: timed(python, env),
                "import": lambda: timed(imports, env),
            },
            warmup=WARMUP,
        )
        load.append(os.getloadavg()[0])
    return [
        Row(
            "cutover check (canary) vs psql -f",
            samples["check"],
            samples["psql"],
            "psql -f",
            unit="ms",
            goal=f"≤ {GOAL}×",
            ratio_goal=GOAL,
            note=f"{len(wanted)} statements: {', '.join(wanted)}; {database.rows:,} rows; "
            f"warm memo; load average {load[0]:.2f} at the start, {load[1]:.2f} at the end",
        ),
        Row(
            "same, first run after a runbook edit (cold memo)",
            samples["cold"],
            samples["psql"],
            "psql -f",
            unit="ms",
            goal=f"≤ {GOAL_COLD}×",
            ratio_goal=GOAL_COLD,
        ),
        Row(
            "  CPU of cutover check (user+sys), warm memo",
            recorded(cpu["check"]),
            unit="ms",
            note=f"psql -f's own: {recorded(cpu['psql']).median * 1e3:.0f} ms (the server's "
            "work is neither's)",
        ),
        Row("  CPU of cutover check (user+sys), cold memo", recorded(cpu["cold"]), unit="ms"),
        Row(
            "  of which: python -c 'import cutover.cli.main'",
            samples["import"],
            samples["python"],
            "python -c pass",
            unit="ms",
        ),
    ]


def main() -> None:
    rounds = int(os.environ.get("ROUNDS", "7"))
    database = BigDatabase().start()
    try:
        print_table(measure(rounds, database))
    finally:
        database.stop()


if __name__ == "__main__":
    main()
