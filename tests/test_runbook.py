"""The runbook format: the shipped runbook loads, and every planted mistake is named with
file:line:col — all of them at once, not just the first."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, sql: dict[str, str] | None = None) -> Path:
    for name, body in (sql or {"q.sql": "-- One\nSELECT 1 AS one;\n"}).items():
        (tmp_path / name).write_text(body)
    path = tmp_path / "runbook.toml"
    path.write_text(text)
    return path


MINIMAL = """\
version = 1
title = "t"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "ten"
percent = 10
hold = "1h"

  [[stages.gates]]
  id = "g"
  query = "q"
  column = "one"
  op = ">="
  value = 1
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(path)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_runbook_loads_with_its_stages_in_order():
    book = runbook.load(REPO / "runbook.toml")
    assert [s.id for s in book.stages] == ["prerequisites", "canary", "ramp", "full", "deprecation"]
    assert [s.percent for s in book.stages] == [0, 10, 50, 100, 100]
    assert book.stage("canary").hold_s == 24 * 3600
    assert book.stage("full").hold_s == 7 * 86400
    success = book.stage("canary").gates[0].check
    assert (success.successes, success.trials, success.confidence) == (
        "successful_imports",
        "total_imports",
        0.95,
    )
    assert {t.severity for t in book.triggers} == {"critical", "high", "medium"}
    # the second statement of a multi-statement file, past a commented-out one
    assert book.queries["new_errors"].statement == 2
    assert "SELECT" in book.queries["new_errors"].sql.upper()


def test_a_minimal_runbook_loads_into_typed_objects(tmp_path):
    book = runbook.load(write(tmp_path, MINIMAL))
    assert book.flag.path == tmp_path / "flag"
    assert book.queries["q"].title == "One"  # from the comment above the statement
    assert book.queries["q"].refresh_s == 30
    assert book.journal_path == tmp_path / ".cutover" / "journal.jsonl"


def test_unknown_key_is_named_with_its_position_and_a_suggestion(tmp_path):
    text = MINIMAL.replace('id = "ten"\npercent = 10', 'id = "ten"\npercnt = 10\npercent = 10')
    found = problems_of(write(tmp_path, text))
    assert any(
        p.startswith(f"{tmp_path}/runbook.toml:17:1: unknown key 'percnt'")
        and "did you mean 'percent'" in p
        for p in found
    ), found


def test_toml_syntax_error_names_line_and_column(tmp_path):
    found = problems_of(write(tmp_path, MINIMAL.replace('title = "t"', 'title = "t')))
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/runbook.toml:2:"), found
    assert "not valid TOML" in found[0]


PLANTED = [
    # (what to replace, with what, the expected "line:col: fragment")
    ('hold = "1h"', 'hold = "1 hour"', "18:8: hold: '1 hour' is not a duration"),
    ("percent = 10", "percent = 110", "17:11: percent 110 is outside 0–100"),
    ('query = "q"', 'query = "qq"', "22:11: unknown query 'qq'"),
    ('op = ">="', 'op = "=>"', "24:8: op '=>' is not one of"),
    ('title = "t"', "title = 3", "2:9: title must be a string"),
    ('file = "q.sql"', 'file = "missing.sql"', "9:8: query file 'missing.sql' not found"),
]


def test_every_planted_mistake_is_reported_at_once_with_file_line_col(tmp_path):
    text = MINIMAL
    for old, new, _ in PLANTED:
        assert old in text
        text = text.replace(old, new, 1)
    found = problems_of(write(tmp_path, text))
    for _, _, expected in PLANTED:
        location, fragment = expected.split(": ", 1)
        wanted = f"{tmp_path}/runbook.toml:{location}: "
        assert any(p.startswith(wanted) and fragment in p for p in found), (expected, found)


def test_duplicate_ids_and_decreasing_percents_and_missing_probe_are_errors(tmp_path):
    text = MINIMAL.replace('id = "ten"', 'id = "zero"').replace(
        "percent = 10",
        'percent = 10\n\n  [[stages.steps]]\n  id = "s"\n  text = "x"\n  probe = "nope"\n',
    )
    text += '\n[[stages]]\nid = "five"\npercent = 5\n'
    found = "\n".join(problems_of(write(tmp_path, text)))
    assert "duplicate stage id 'zero' (first at line 11)" in found
    assert "unknown probe 'nope'" in found
    assert "percent 5 is below the previous stage's 10" in found


def test_a_gate_needs_exactly_one_of_column_or_row_count(tmp_path):
    text = MINIMAL.replace('column = "one"', 'column = "one"\n  row_count = true')
    found = "\n".join(problems_of(write(tmp_path, text)))
    assert "needs exactly one of `column` or `row_count = true`" in found


def test_successes_without_trials_is_an_error(tmp_path):
    text = MINIMAL.replace("value = 1\n", 'value = 1\n  successes = "one"\n')
    found = "\n".join(problems_of(write(tmp_path, text)))
    assert "`successes` and `trials` go together" in found


def test_a_query_that_writes_is_refused_at_the_sql_files_line(tmp_path):
    sql = {"q.sql": "-- banner\n\n-- Oops\nDELETE FROM user_profiles;\n"}
    found = problems_of(write(tmp_path, MINIMAL, sql))
    assert any(
        p.startswith(f"{tmp_path}/q.sql:4:1: a query must be one read-only statement")
        for p in found
    ), found


def test_a_multi_statement_file_needs_statement_n(tmp_path):
    sql = {"q.sql": "SELECT 1 AS one;\n-- SELECT 3;\nSELECT 2 AS one;\n"}
    found = "\n".join(problems_of(write(tmp_path, MINIMAL, sql)))
    assert "holds 2 statements; say which with `statement = N`" in found
    text = MINIMAL.replace('file = "q.sql"', 'file = "q.sql"\nstatement = 2')
    book = runbook.load(write(tmp_path, text, sql))
    assert book.queries["q"].sql == "SELECT 2 AS one"
    text = MINIMAL.replace('file = "q.sql"', 'file = "q.sql"\nstatement = 3')
    found = "\n".join(problems_of(write(tmp_path, text, sql)))
    assert "statement 3 does not exist: q.sql holds 2" in found


def test_validate_prints_every_problem_and_exits_2(tmp_path):
    text = MINIMAL
    for old, new, _ in PLANTED:
        text = text.replace(old, new, 1)
    path = write(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(path), "validate"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith(str(path))]
    assert len(lines) >= len(PLANTED)
    assert "Traceback" not in done.stderr


def test_validate_passes_on_the_shipped_runbook_without_a_database():
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(REPO / "runbook.toml"), "validate"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "not prepared" in done.stdout


def test_validate_prepares_the_shipped_queries_on_the_soulprint_schema(soulprint_dsn):
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(REPO / "runbook.toml"), "validate"],
        capture_output=True,
        text=True,
        env=_env(CUTOVER_DATABASE_URL=soulprint_dsn),
    )
    assert done.returncode == 0, done.stderr
    assert "all prepared on Postgres" in done.stdout


def test_a_query_that_parses_but_fails_on_postgres_is_named_at_its_sql_position(
    tmp_path, soulprint_dsn
):
    # ORDER BY an expression over an output alias reads right and fails on Postgres.
    sql = {
        "q.sql": (
            "-- banner\n\n-- Errors\nSELECT full_pass_error AS error,\n"
            "       count(*) AS n\n  FROM user_profiles\n GROUP BY 1\n"
            " ORDER BY n * 2 DESC;\n"
        )
    }
    text = MINIMAL.replace('column = "one"', 'column = "n"')
    path = write(tmp_path, text, sql)
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(path), "validate"],
        capture_output=True,
        text=True,
        env=_env(CUTOVER_DATABASE_URL=soulprint_dsn),
    )
    assert done.returncode == 2
    assert f"{tmp_path}/q.sql:8:11: query 'q' fails on Postgres" in done.stderr, done.stderr
    assert 'column "n" does not exist' in done.stderr or "needs column n" in done.stderr


def test_the_runbook_path_comes_from_the_flag_then_the_environment_then_the_folder():
    assert runbook.resolve_runbook_path("a.toml", {"CUTOVER_RUNBOOK": "b.toml"}) == Path("a.toml")
    assert runbook.resolve_runbook_path(None, {"CUTOVER_RUNBOOK": "b.toml"}) == Path("b.toml")
    assert runbook.resolve_runbook_path(None, {}) == Path("runbook.toml")


def test_a_copy_of_the_shipped_runbook_elsewhere_still_finds_its_queries(tmp_path):
    shutil.copy(REPO / "runbook.toml", tmp_path / "runbook.toml")
    shutil.copytree(REPO / "queries", tmp_path / "queries")
    book = runbook.load(tmp_path / "runbook.toml")
    assert book.queries["success_rate"].file == tmp_path / "queries" / "01_success_rate.sql"


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env.update(extra)
    return env


def test_validate_explain_shows_each_shipped_querys_plan_and_cost(soulprint_dsn):
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(REPO / "runbook.toml"),
         "validate", "--explain"],
        capture_output=True,
        text=True,
        env=_env(CUTOVER_DATABASE_URL=soulprint_dsn),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = done.stdout.split("\n\n")[0]
    assert "EXPLAIN" in summary and "nothing ran" in summary
    for query_id in ("success_rate", "timeline", "duration_histogram", "v2_share"):
        assert f"\n  {query_id} " in summary, query_id
        assert f"\n{query_id}:\n  " in done.stdout, query_id  # its plan, as Postgres wrote it
    assert "cost=" in done.stdout
    assert "render_memory" not in done.stdout  # an http query has no plan


async def test_validate_explain_plans_a_query_without_running_it(tmp_path, soulprint_dsn):
    import asyncpg

    # Run, this divides by zero on the empty table; planned, it is only a cost.
    query = "SELECT 1 / (SELECT count(*) FROM user_profiles)::int AS one"
    path = write(tmp_path, MINIMAL, {"q.sql": f"-- One\n{query};\n"})
    env = _env(CUTOVER_DATABASE_URL=soulprint_dsn)
    explain = [sys.executable, "-m", "cutover.cli", "--runbook", str(path), "validate", "--explain"]
    done = subprocess.run(explain, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "\nq:\n  " in done.stdout
    conn = await asyncpg.connect(soulprint_dsn)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):  # what running it would have done
            await conn.fetch(query)
    finally:
        await conn.close()


def test_validate_explain_without_a_database_says_what_it_needs():
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(REPO / "runbook.toml"),
         "validate", "--explain"],
        capture_output=True,
        text=True,
        env=_env(),
    )  # fmt: skip
    assert done.returncode == 2
    assert "--explain asks the database for its plans: set CUTOVER_DATABASE_URL" in done.stderr


async def test_a_plan_that_fails_says_so_in_the_words_a_failed_run_uses(tmp_path, soulprint_dsn):
    from cutover.base.errors import CutoverError
    from cutover.sources.db import QueryRunner

    sql = "-- One\nSELECT no_such AS one FROM user_profiles;\n"
    book = runbook.load(write(tmp_path, MINIMAL, {"q.sql": sql}))
    runner = QueryRunner(book.database, soulprint_dsn)
    try:
        with pytest.raises(CutoverError) as caught:
            await runner.explain(book.queries["q"])
    finally:
        await runner.aclose()
    assert "needs column no_such" in str(caught.value)
    assert "UndefinedColumnError" not in str(caught.value)
