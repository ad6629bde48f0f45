"""`cutover check` against `psql -f` of exactly the statements it runs, on 1,000,000
`user_profiles` rows (bench/fixtures.py builds them): both fresh processes, interleaved,
several rounds. The journal stands at the canary, so check judges the shipped runbook's
canary stage: its gates' and every trigger's queries. The http query among them
(render_memory) is left unconfigured, so it answers at once without a request; psql runs the
SQL ones only.

Run: .venv/bin/python bench/check_psql.py   [ROUNDS=7] [BENCH_ROWS=1000000] [BENCH_PGDATA=dir]
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (
    CUTOVER,
    PYTHON,
    BigDatabase,
    Row,
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

GOAL = 1.3


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


def measure(rounds: int, database: BigDatabase) -> list[Row]:
    compile_bytecode()
    with scratch() as folder:
        book = runbook_copy(folder)
        write_journal(folder / "journal.jsonl", 40, at_stage="canary")
        sql, wanted = statements(book)
        sql_file = folder / "check.sql"
        sql_file.write_text(sql, encoding="utf-8")
        env = bytecode_env()
        env.update({"CUTOVER_DATABASE_URL": database.dsn, "CUTOVER_RUNBOOK": str(book)})
        for name in (
            "RENDER_API_URL",
            "RENDER_API_KEY",
            "RENDER_OWNER_ID",
            "RENDER_RLM_SERVICE_ID",
        ):
            env.pop(name, None)
        baseline = [psql(), "-X", "-q", "-d", database.dsn, "-f", str(sql_file), "-o", os.devnull]
        ours = [CUTOVER, "check"]
        python = [PYTHON, "-c", "pass"]
        imports = [PYTHON, "-c", "import cutover.cli.main"]
        samples = interleaved(
            rounds,
            {
                "psql": lambda: timed(baseline, env),
                "check": lambda: timed(ours, env),
                "python": lambda: timed(python, env),
                "import": lambda: timed(imports, env),
            },
        )
    ratio = samples["check"].median / samples["psql"].median
    return [
        Row(
            "cutover check (canary) vs psql -f",
            samples["check"],
            samples["psql"],
            "psql -f",
            unit="ms",
            goal=f"≤ {GOAL}×",
            met=ratio <= GOAL,
            note=f"{len(wanted)} statements: {', '.join(wanted)}; {database.rows:,} rows",
        ),
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
