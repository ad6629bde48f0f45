"""The demo runs a watcher beside the console, on a copy of the runbook whose durations of
time are all scaled like its holds, so a walk-through sees the hold count from the evidence
in seconds; the watcher stops with the world and never writes to the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from cutover.demo.runbook_copy import demo_runbook, write_demo_runbook
from cutover.demo.world import WATCH_LOG
from cutover.record.evidence import evidence_path, read_evidence
from cutover.record.snapshots import snapshots_dir
from cutover.runbook.loader import load
from watch_world import SHIPPED, demo_world, wait_until, world_env


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cutover-demo-watch-", ignore_cleanup_errors=True) as d:
        yield Path(d)


def test_the_demo_copy_scales_every_duration_of_time(tmp_path: Path) -> None:
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    for query in data["queries"].values():
        if "file" in query:  # an http query has none
            query["file"] = str(SHIPPED.parent / query["file"])
    canary = next(s for s in data["stages"] if s["id"] == "canary")
    canary.update(max_gap="2h", checkpoint="12h")
    canary["steps"][0].update(after="7d", needs=["success"])
    data["triggers"][0]["for"] = "6h"
    data["triggers"].append(
        {
            "id": "slow",
            "query": "slow_last_hour",
            "column": "slow_imports",
            "op": ">",
            "value": 3,
            "severity": "high",
            "respond_within": "1h",
        }
    )
    source = tmp_path / "runbook.toml"
    source.write_text(tomli_w.dumps(data), encoding="utf-8")

    copy = load(write_demo_runbook(source, tmp_path / "demo"))

    stage = copy.stage("canary")
    assert stage.hold_s == 24
    # 2 h scales to 2 s, but its gates read queries refreshed every 30 s and 1 min, capped
    # at 15 s in the demo: a gap shorter than two of those would restart the hold between
    # its own evaluations.
    assert stage.max_gap_s == 30
    assert stage.checkpoint_s == 60  # 12 s, raised to the runbook's floor of 1 min
    assert stage.steps[0].after_s == 168
    triggers = {t.id: t for t in copy.triggers}
    assert triggers["success_below_95"].for_s == 6
    assert triggers["slow"].respond_within_s == 5  # 1 s, raised to the demo's floor
    # A stage that sets no max_gap gets the default's scaled form, with the same floor.
    assert copy.stage("ramp").max_gap_s == 30
    # Every stage's hold can be met by the watcher's own evaluations.
    for s in copy.stages:
        slowest = max((copy.queries[g.check.query].refresh_s for g in s.gates), default=30)
        assert s.max_gap_s >= 2 * slowest


def test_a_malformed_duration_is_left_for_the_loader_to_name(tmp_path: Path) -> None:
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    data["stages"][1]["max_gap"] = "soon"
    copy = demo_runbook(data, SHIPPED, tmp_path)
    assert copy["stages"][1]["max_gap"] == "soon"


def test_a_fresh_demo_starts_without_the_last_demos_evidence_and_snapshots(
    tmp_path: Path,
) -> None:
    demo = tmp_path / "demo"
    write_demo_runbook(SHIPPED, demo)
    journal = demo / "journal.jsonl"
    evidence_path(journal).write_text("{}\n")
    snapshots_dir(journal).mkdir()
    write_demo_runbook(SHIPPED, demo, keep=True)
    assert evidence_path(journal).exists()
    write_demo_runbook(SHIPPED, demo)
    assert not evidence_path(journal).exists()
    assert not snapshots_dir(journal).exists()


def test_the_demos_watcher_counts_the_hold_from_its_evidence_and_stops_with_the_world(
    scratch: Path,
) -> None:
    with demo_world(scratch, hold="8h", notify=False) as world:
        world.start_watcher()
        log = world.dir / WATCH_LOG
        env = world_env(world.environ)
        wait_until(lambda: "off (0 %, visit 1): gates none" in log.read_text(), 60, "a summary")
        advanced = subprocess.run(
            [sys.executable, "-m", "cutover.cli", "advance", "--confirm", "50"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert advanced.returncode == 0, advanced.stderr
        wait_until(lambda: "canary: hold ✓ 8s met" in log.read_text(), 90, "the hold met")
        status = subprocess.run(
            [sys.executable, "-m", "cutover.cli", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        thread = world.watcher._thread
    assert thread is not None and not thread.is_alive()
    said = log.read_text()
    assert said.splitlines()[-1].endswith("watcher stopped")
    assert "Traceback" not in said
    hold = json.loads(status.stdout)["hold"]
    assert hold["met"] is True
    assert hold["required_s"] == 8
    runs = read_evidence(evidence_path(world.dir / "journal.jsonl")).runs
    assert {r.by for r in runs if r.stage == "canary"} >= {"watch"}
