"""What a runbook may say of its metric sources (http queries, probe bodies and headers,
a query's `needs`), and what `validate` says when it says it wrong: every mistake at its
file:line:col, never a traceback, never a secret written in the runbook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound

HEAD = """\
version = 1
title = "sources"

[flag]
kind = "file"
path = "flag"

[queries.rate]
file = "rate.sql"

[[stages]]
id = "zero"
percent = 0

  [[stages.gates]]
  id = "rate"
  query = "rate"
  column = "rate"
  op = ">="
  value = 95
"""


def write(folder: Path, extra: str) -> Path:
    (folder / "rate.sql").write_text("-- Rate\nSELECT 99 AS rate;\n", encoding="utf-8")
    (folder / "flag").write_text("0\n", encoding="utf-8")
    path = folder / "runbook.toml"
    path.write_text(HEAD + extra, encoding="utf-8")
    return path


def problems(folder: Path, extra: str) -> list[str]:
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(write(folder, extra), shown_as="runbook.toml")
    return [str(p) for p in caught.value.problems]


def validate(folder: Path, extra: str, dsn: str | None) -> subprocess.CompletedProcess:
    path = write(folder, extra)
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    if dsn:
        env["CUTOVER_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(path), "validate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


MANUAL_TRIGGER = """
[[triggers]]
id = "complaints"
kind = "manual"
severity = "high"
respond_within = "1h"
"""


def test_validate_on_postgres_takes_a_manual_trigger_in_its_stride(tmp_path, empty_dsn):
    # A manual trigger reads no query: checking the columns it reads used to crash on it.
    done = validate(tmp_path, MANUAL_TRIGGER, empty_dsn)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr
    assert "all prepared on Postgres" in done.stdout


def test_a_header_written_as_a_literal_is_refused_as_a_secret_in_the_runbook(tmp_path):
    found = problems(
        tmp_path,
        """
[probes.health]
url = "http://rlm/health"
headers = { Authorization = "Bearer abc123" }
""",
    )
    assert len(found) == 1
    assert found[0].startswith("runbook.toml:")
    assert "header Authorization's value comes from the environment" in found[0]
    assert "a literal would put a secret in the runbook" in found[0]


def test_a_header_with_a_default_is_refused_too(tmp_path):
    found = problems(
        tmp_path,
        """
[queries.mem]
kind = "http"
url = "http://render/v1/metrics/memory"
headers = { Authorization = "Bearer ${RENDER_API_KEY:-rnd_abc}" }
""",
    )
    assert ["may not have a :-default" in p for p in found] == [True]


def test_a_bare_variable_name_or_a_template_is_a_header(tmp_path):
    book = runbook.load(
        write(
            tmp_path,
            """
[queries.mem]
kind = "http"
url = "http://render/v1/metrics/memory"
headers = { Authorization = "Bearer ${RENDER_API_KEY}", X-Token = "RLM_TOKEN" }
""",
        )
    )
    assert book.queries["mem"].headers == {
        "Authorization": "Bearer ${RENDER_API_KEY}",
        "X-Token": "${RLM_TOKEN}",
    }


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            'kind = "graphql"\nurl = "http://x"',
            "query kind 'graphql' is not known; use one of sql, http",
        ),
        ('kind = "http"', "needs `url`"),
        ('kind = "http"\nurl = "http://x"\nrows = "logs"', "rows: not a JSONPath"),
        ('kind = "http"\nurl = "http://x"\nrows = "$.[["', "not a JSONPath (expected"),
        ('kind = "http"\nurl = "http://x"\ncolumns = { m = "$.a[" }', "not a JSONPath"),
        ('kind = "http"\nurl = "http://x"\ncolumns = { m = 3 }', "columns.m must be a JSONPath"),
        ('kind = "http"\nurl = "http://x"\nmethod = "TRACE"', "method 'TRACE' is not one of"),
        ('kind = "http"\nurl = "http://x/${HOST"', "malformed variable reference"),
        ('kind = "http"\nurl = "http://x"\ntimeout = "1h"', "timeout must be above 0s"),
        ('kind = "http"\nurl = "http://x"\nfile = "q.sql"', "unknown key 'file'"),
        ('file = "rate.sql"\nneeds = ["pipeline version"]', "needs names columns"),
        ('file = "rate.sql"\nneeds = { pipeline_version = 1 }', "needs.pipeline_version is"),
        ('file = "rate.sql"\nneeds = "pipeline_version"', "needs must be a table or an array"),
    ],
)
def test_a_query_source_said_wrong_is_named_where_it_is(tmp_path, extra, said):
    found = problems(tmp_path, f"\n[queries.extra]\n{extra}\n")
    assert any(said in p for p in found), found
    assert all(p.startswith("runbook.toml:") for p in found)


def test_rows_that_are_not_jsonpath_point_at_the_value(tmp_path):
    extra = '\n[queries.extra]\nkind = "http"\nurl = "http://x"\nrows = "logs"\n'
    found = problems(tmp_path, extra)
    line = (HEAD + extra).splitlines().index('rows = "logs"') + 1
    assert found == [
        f'runbook.toml:{line}:8: rows: not a JSONPath: it starts with $, like "$.values[-1].value"'
    ]


def test_a_probe_json_body_posts_by_default(tmp_path):
    book = runbook.load(
        write(
            tmp_path,
            """
[probes.v1]
url = "http://rlm/process-full"
json = { user_id = "test", storage_path = "test.json" }
""",
        )
    )
    probe = book.probes["v1"]
    assert (probe.method, probe.json) == ("POST", {"user_id": "test", "storage_path": "test.json"})
    assert not probe.safe


def test_a_needs_list_and_table_both_load(tmp_path):
    (tmp_path / "v.sql").write_text("-- V\nSELECT pipeline_version FROM t;\n")
    book = runbook.load(
        write(
            tmp_path,
            """
[queries.a]
file = "v.sql"
needs = ["pipeline_version"]

[queries.b]
file = "v.sql"
needs = { pipeline_version = "add it to see the v1/v2 split" }
""",
        )
    )
    assert book.queries["a"].needs == {"pipeline_version": ""}
    assert book.queries["b"].needs == {"pipeline_version": "add it to see the v1/v2 split"}


async def test_a_query_missing_a_column_it_does_not_declare_still_fails_validate(
    tmp_path, empty_dsn
):
    # `needs` excuses the named column only: any other missing column is the runbook's bug.
    import asyncpg

    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute("CREATE TABLE t (x int)")
    finally:
        await conn.close()
    extra = '\n[queries.v]\nfile = "v.sql"\nneeds = ["pipeline_version"]\n'
    (tmp_path / "v.sql").write_text("-- V\nSELECT x, versoin FROM t;\n")
    done = validate(tmp_path, extra, empty_dsn)
    assert done.returncode == 2
    assert "needs column versoin (the database has no such column)" in done.stderr


def test_the_console_lays_out_panels_beside_a_manual_trigger(tmp_path):
    # The console's panels list the columns triggers read; a manual trigger reads none,
    # and used to crash the console as it opened.
    from cutover.tui.widgets.query_panel import columns_read

    book = runbook.load(write(tmp_path, MANUAL_TRIGGER))
    assert columns_read(book, "rate") == ("rate",)
