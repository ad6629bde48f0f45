"""Numbers TOML allows but no runbook can mean — nan, inf, a hold of 10^20 days — are refused
where they are written, instead of crashing check or the console later."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cutover.runbook import loader as runbook
from cutover.runbook.durations import humanize, parse_duration
from cutover.runbook.problems import ProblemsFound

RUNBOOK = """\
version = 1
title = "numbers"

[database]
statement_timeout = "5s"

[flag]
kind = "file"
path = "flag"

[queries.q]
file = "q.sql"
refresh = "30s"

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10
hold = "24h"

  [[stages.gates]]
  id = "success"
  query = "q"
  column = "rate"
  op = ">="
  value = 95
  successes = "ok"
  trials = "total"
  confidence = 0.95
"""


def problems_of(tmp_path: Path, old: str, new: str) -> list[str]:
    assert old in RUNBOOK
    (tmp_path / "q.sql").write_text(
        "-- Rate\nSELECT 1 AS rate, 1 AS ok, 1 AS total;\n", encoding="utf-8"
    )
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK.replace(old, new), encoding="utf-8")
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


@pytest.mark.parametrize("written", ["nan", "inf", "-inf", "+inf", "-nan"])
def test_a_threshold_that_is_not_a_finite_number_is_refused_where_written(tmp_path, written):
    found = problems_of(tmp_path, "value = 95", f"value = {written}")
    assert len(found) == 1, found
    assert found[0].startswith("29:11: value must be a finite number, not ")


@pytest.mark.parametrize("written", ["nan", "inf"])
def test_a_confidence_that_is_not_a_finite_number_is_refused_where_written(tmp_path, written):
    found = problems_of(tmp_path, "confidence = 0.95", f"confidence = {written}")
    assert len(found) == 1, found
    assert found[0].startswith("32:16: confidence must be a finite number")


@pytest.mark.parametrize(
    ("old", "new", "at"),
    [
        ('hold = "24h"', 'hold = "99999999999999999999d"', "22:8"),
        ('hold = "24h"', 'hold = "3651d"', "22:8"),
        ('hold = "24h"', f'hold = "{"9" * 400}s"', "22:8"),  # a float that is inf
        ('refresh = "30s"', 'refresh = "87601h"', "13:11"),
        ('statement_timeout = "5s"', 'statement_timeout = "1000000000d"', "5:21"),
    ],
)
def test_a_duration_beyond_ten_years_is_refused_where_written(tmp_path, old, new, at):
    found = problems_of(tmp_path, old, new)
    assert len(found) == 1, found
    assert found[0].startswith(f"{at}: ")
    assert "is longer than 3650d (10 years)" in found[0]


@pytest.mark.parametrize("written", ["0s", "30d", "0.0001s"])
def test_a_statement_timeout_postgres_would_read_as_no_limit_or_refuse_is_refused(
    tmp_path, written
):
    found = problems_of(tmp_path, 'statement_timeout = "5s"', f'statement_timeout = "{written}"')
    assert found == [
        "5:21: statement_timeout must be at least 0.001s (0 would let a query run forever) "
        "and at most 24d (Postgres's limit)"
    ]


def test_validate_refuses_a_nan_threshold_and_exits_2(tmp_path):
    problems_of(tmp_path, "value = 95", "value = nan")  # writes the files
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(tmp_path / "runbook.toml"),
         "validate"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "value must be a finite number, not nan" in done.stderr
    assert "Traceback" not in done.stderr


TEN_YEARS_S = 3650 * 86400
DURATIONS = st.one_of(
    st.builds(
        lambda whole, frac, unit: f"{whole}{frac}{unit}",
        st.integers(min_value=0, max_value=10**30).map(str) | st.text("0123456789", max_size=400),
        st.sampled_from(["", ".5", ".0001", "." + "9" * 30]),
        st.sampled_from(["s", "m", "h", "d", " d", "x", ""]),
    ),
    st.text(max_size=40),
)


@given(DURATIONS)
def test_any_duration_the_loader_accepts_fits_the_clock_and_reads_back(text: str):
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds)
    assert 0 <= seconds <= TEN_YEARS_S
    held = timedelta(seconds=seconds)
    assert datetime(2025, 1, 1, tzinfo=UTC) + held > datetime(2024, 12, 31, tzinfo=UTC)
    assert humanize(seconds)
    assert humanize(held.total_seconds()) == humanize(seconds)
