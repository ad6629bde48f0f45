"""The headless commands that read and record without moving traffic: status, signoff,
journal. Each runs as the operator would run it, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNBOOK = """\
version = 1
title = "drill"

[flag]
kind = "file"
path = "percent"

[probes.health]
url = "${RLM_URL}/health"
expect_json = { processors_available = true }
timeout = "3s"

[[stages]]
id = "prep"
title = "Prerequisites"
percent = 0

  [[stages.steps]]
  id = "paper"
  text = "Change ticket approved"

  [[stages.steps]]
  id = "healthy"
  text = "RLM healthy"
  probe = "health"

[[stages]]
id = "canary"
percent = 10
hold = "24h"
"""


@pytest.fixture
def drill(tmp_path: Path) -> Path:
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    (tmp_path / "percent").write_text("0\n")
    return tmp_path / "runbook.toml"


def cutover(runbook: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    full.update({"USER": "ana", **env})
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def test_status_json_has_the_contract_fields(drill):
    done = cutover(drill, "status", "--json")
    status = json.loads(done.stdout)
    assert status["stage"] == "prep"
    assert status["percent"] == {"stage": 0, "set": 0, "read": 0, "live": True, "observed": None}
    assert status["hold"]["required_s"] == 0
    assert [s["step"] for s in status["signoffs"]] == ["paper", "healthy"]
    assert status["pending"] is None
    assert done.returncode == 0


def test_status_reports_drift_when_the_flag_differs_from_the_stage(drill):
    (drill.parent / "percent").write_text("50\n")
    status = json.loads(cutover(drill, "status", "--json").stdout)
    assert status["percent"]["read"] == 50
    assert "the flag reads 50 %" in status["drift"]
    assert "DRIFT" in cutover(drill, "status").stdout


def test_a_sign_off_is_journaled_with_who_when_and_the_note(drill):
    done = cutover(drill, "signoff", "paper", "--note", "CHG-1234")
    assert done.returncode == 0, done.stderr
    assert "paper signed by ana" in done.stdout
    status = json.loads(cutover(drill, "status", "--json").stdout)
    paper = status["signoffs"][0]
    assert (paper["signed"], paper["by"], paper["note"]) == (True, "ana", "CHG-1234")
    again = cutover(drill, "signoff", "paper")
    assert again.returncode == 1 and "already signed" in again.stderr


def test_an_unknown_step_is_refused_naming_the_stages_steps(drill):
    done = cutover(drill, "signoff", "papr")
    assert done.returncode == 1
    assert "no step 'papr' in stage prep; its steps: paper, healthy" in done.stderr


def test_a_probe_step_signs_only_when_its_probe_passes(drill, rlm):
    rlm.processors_available = False
    refused = cutover(drill, "signoff", "healthy", RLM_URL=rlm.url)
    assert refused.returncode == 1
    assert "needs probe health to pass" in refused.stderr
    assert "processors_available" in refused.stderr
    rlm.processors_available = True
    done = cutover(drill, "signoff", "healthy", RLM_URL=rlm.url)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in cutover(drill, "journal", "--json").stdout.splitlines()]
    assert events[-1]["kind"] == "signoff" and events[-1]["probe"].startswith("health: pass")


def test_a_failing_probe_can_be_overridden_only_with_a_note_and_it_is_journaled(drill, rlm):
    rlm.processors_available = False
    no_note = cutover(drill, "signoff", "healthy", "--override", RLM_URL=rlm.url)
    assert no_note.returncode == 1 and "needs a note" in no_note.stderr
    done = cutover(
        drill,
        "signoff",
        "healthy",
        "--override",
        "--note",
        "Render says it is a stale health flag; imports run",
        RLM_URL=rlm.url,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in cutover(drill, "journal", "--json").stdout.splitlines()]
    assert events[-1]["override"] is True
    assert "fail" in events[-1]["probe"]


def test_journal_verify_finds_the_first_tampered_seq(drill):
    for step in ("paper",):
        cutover(drill, "signoff", step, "--note", "one")
    (drill.parent / "percent").write_text("0\n")
    journal = drill.parent / ".cutover" / "journal.jsonl"
    cutover(drill, "status")
    assert cutover(drill, "journal", "--verify").returncode == 0
    lines = journal.read_text().splitlines()
    first = json.loads(lines[0])
    first["note"] = "two"
    lines[0] = json.dumps(first)
    journal.write_text("\n".join(lines) + "\n")
    done = cutover(drill, "journal", "--verify", "--json")
    verdict = json.loads(done.stdout)
    assert done.returncode == 1
    assert (verdict["ok"], verdict["first_bad_seq"]) == (False, 1)


def test_a_torn_last_line_is_a_warning_not_a_failure(drill):
    cutover(drill, "signoff", "paper")
    journal = drill.parent / ".cutover" / "journal.jsonl"
    with journal.open("a") as f:
        f.write('{"seq": 2, "ts": "2026-')
    done = cutover(drill, "status", "--json")
    assert done.returncode == 0
    assert "torn" in done.stderr
    assert json.loads(done.stdout)["signoffs"][0]["signed"] is True


def test_a_malformed_runbook_names_file_line_and_column_and_exits_2(drill):
    drill.write_text(RUNBOOK.replace("percent = 10", 'percent = "ten"'))
    done = cutover(drill, "status")
    assert done.returncode == 2
    assert f"{drill}:29:11: percent must be an integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_journal_that_cannot_be_written_is_an_error_not_a_traceback(drill):
    (drill.parent / "blocker").write_text("a file where the journal's folder should be\n")
    drill.write_text(
        RUNBOOK.replace(
            'title = "drill"', 'title = "drill"\n\n[journal]\npath = "blocker/journal.jsonl"'
        )
    )
    done = cutover(drill, "signoff", "paper")
    assert done.returncode == 2
    assert "cutover signoff:" in done.stderr and "blocker" in done.stderr
    assert "Traceback" not in done.stderr
