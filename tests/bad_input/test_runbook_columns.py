"""A gate, trigger or observed share that reads a column its query does not return is named
by `validate` at the runbook's own file:line:col, with the columns the query does return —
not left to read "quiet" forever at run time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

Ran = subprocess.CompletedProcess

RUNBOOK = """\
version = 1
title = "columns"

[flag]
kind = "file"
path = "flag"
observed = { query = "share", column = "v2_percent" }

[queries.success]
file = "success.sql"

[queries.share]
file = "share.sql"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10

  [[stages.gates]]
  id = "success"
  query = "success"
  column = "success_rate"
  op = ">="
  value = 95
  successes = "succeeded"
  trials = "total"

[[triggers]]
id = "stuck"
query = "success"
column = "stuck"
op = ">"
value = 10
"""
SQL = {
    "success.sql": (
        "-- Success\nSELECT 98.5 AS success_rate_pct, 197 AS succeeded, 200 AS total, 0 AS stuck;\n"
    ),
    "share.sql": "-- Share\nSELECT 10.0 AS v2_pct;\n",
}


def validate(tmp_path: Path, dsn: str | None, runbook: str = RUNBOOK) -> Ran:
    for name, text in SQL.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "flag").write_text("0\n", encoding="utf-8")
    (tmp_path / "runbook.toml").write_text(runbook, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    if dsn:
        env["CUTOVER_DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", "runbook.toml", "validate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


def at(runbook: str, name: str) -> str:
    """line:col where the string value "name" is first written in the runbook."""
    before = runbook[: runbook.index(f'"{name}"')]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def test_every_column_the_runbook_reads_is_checked_against_the_query(tmp_path, empty_dsn):
    done = validate(tmp_path, empty_dsn)
    assert done.returncode == 2, done.stdout + done.stderr
    assert at(RUNBOOK, "v2_percent") == "7:40"  # the value, where the name is written
    assert done.stderr.splitlines() == [
        "runbook.toml:7:40: flag.observed reads column 'v2_percent', but query 'share' returns "
        "no such column (it returns v2_pct)",
        f"runbook.toml:{at(RUNBOOK, 'success_rate')}: gate 'success' of stage 'canary' "
        "reads column 'success_rate', but query 'success' returns no such column "
        "(it returns success_rate_pct, succeeded, total, stuck)",
        "2 problems in the runbook",
    ]


def test_successes_and_trials_are_checked_too(tmp_path, empty_dsn):
    runbook = (
        RUNBOOK.replace('successes = "succeeded"', 'successes = "successes"')
        .replace('trials = "total"', 'trials = "imports"')
        .replace('column = "v2_percent"', 'column = "v2_pct"')
        .replace('column = "success_rate"', 'column = "success_rate_pct"')
    )
    done = validate(tmp_path, empty_dsn, runbook)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith(
        f"runbook.toml:{at(runbook, 'successes')}: gate 'success' of stage 'canary' "
        "reads successes 'successes', but query 'success' returns no such column"
    )
    assert lines[1].startswith(
        f"runbook.toml:{at(runbook, 'imports')}: gate 'success' of stage 'canary' "
        "reads trials 'imports'"
    )


def test_a_trigger_on_a_missing_column_is_named(tmp_path, empty_dsn):
    runbook = (
        RUNBOOK.replace('column = "v2_percent"', 'column = "v2_pct"')
        .replace('column = "success_rate"', 'column = "success_rate_pct"')
        .replace('column = "stuck"', 'column = "stuck_imports"')
    )
    done = validate(tmp_path, empty_dsn, runbook)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(
        f"runbook.toml:{at(runbook, 'stuck_imports')}: trigger 'stuck' reads column "
        "'stuck_imports', but query 'success' returns no such column"
    )


def test_a_runbook_whose_columns_all_exist_validates(tmp_path, empty_dsn):
    runbook = RUNBOOK.replace('column = "v2_percent"', 'column = "v2_pct"')
    runbook = runbook.replace('column = "success_rate"', 'column = "success_rate_pct"')
    done = validate(tmp_path, empty_dsn, runbook)
    assert done.returncode == 0, done.stderr
    assert "all prepared on Postgres" in done.stdout


def test_a_manual_trigger_reads_no_column_and_does_not_crash_validate(tmp_path, empty_dsn):
    runbook = (
        RUNBOOK.replace('column = "v2_percent"', 'column = "v2_pct"').replace(
            'column = "success_rate"', 'column = "success_rate_pct"'
        )
        + '\n[[triggers]]\nid = "complaints"\nkind = "manual"\nseverity = "high"\n'
    )
    done = validate(tmp_path, empty_dsn, runbook)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


COMPARING = """\
version = 1
title = "comparing"

[flag]
kind = "file"
path = "flag"

[queries.versions]
file = "versions.sql"

[queries.durations]
file = "durations.sql"

[[stages]]
id = "canary"
percent = 10

[[stages]]
id = "ramp"
percent = 50

  [[stages.gates]]
  id = "v2_not_worse"
  query = "versions"
  column = "rate"
  row = { pipeline_version = "v2" }
  against = { row = { pipline_version = "v1" } }
  op = ">="

  [[stages.gates]]
  id = "no_slowdown"
  query = "durations"
  distribution = { bucket = "bucket", count = "imports" }
  against = { baseline = "canary" }
  op = "<="

[[triggers]]
id = "new_errors"
query = "versions"
new_rows = { key = "error_pattern" }
against = { baseline = "previous" }
op = ">"
"""
COMPARING_SQL = {
    "versions.sql": "-- v\nSELECT 'v2' AS pipeline_version, 98.0 AS rate;\n",
    "durations.sql": "-- d\nSELECT '< 5 min' AS bucket, 3 AS count;\n",
}


def test_the_columns_a_comparison_matches_buckets_or_keys_on_are_checked(tmp_path, empty_dsn):
    for name, text in COMPARING_SQL.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = validate(tmp_path, empty_dsn, COMPARING)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"runbook.toml:{at(COMPARING, 'v1')}: "
        "gate 'v2_not_worse' of stage 'ramp' reads against.row 'pipline_version', but query "
        "'versions' returns no such column (it returns pipeline_version, rate)",
        f"runbook.toml:{at(COMPARING, 'imports')}: gate 'no_slowdown' of stage 'ramp' reads "
        "distribution.count 'imports', but query 'durations' returns no such column "
        "(it returns bucket, count)",
        f"runbook.toml:{at(COMPARING, 'error_pattern')}: trigger 'new_errors' reads "
        "new_rows.key 'error_pattern', but query 'versions' returns no such column "
        "(it returns pipeline_version, rate)",
        "3 problems in the runbook",
    ]
