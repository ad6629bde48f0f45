"""Baselines: what a comparison `against = { baseline = … }` compares with, the query's result
in a stage's latest exit snapshot, or why there is none. Read by the comparisons and by the
session that looks the snapshots up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cutover.record.snapshots import Snapshot
from cutover.runbook.model import PREVIOUS, Comparison, Runbook, Stage
from cutover.sources.results import QueryResult


@dataclass(frozen=True)
class Baseline:
    """What a comparison `against = { baseline = … }` compares with: its query's result in
    a stage's latest exit snapshot, or why there is none."""

    stage: str | None  # the stage named ("previous" resolved); None: there is none
    result: QueryResult | None = None
    at: datetime | None = None  # when the snapshot was taken
    missing: str = ""  # why there is no result
    damaged: bool = False  # the snapshot exists and cannot be read: unknown, not absent


def baseline_stage(runbook: Runbook, stage: Stage, name: str) -> str | None:
    """The stage a baseline names, seen from `stage`: "previous" is the one before it
    (None for the first stage)."""
    if name != PREVIOUS:
        return name
    index = runbook.stage_index(stage.id)
    return runbook.stages[index - 1].id if index > 0 else None


def baseline_stages(runbook: Runbook, stage: Stage) -> list[str]:
    """The stages whose exit snapshots a check of `stage` (its gates, every trigger)
    compares with, each once."""
    checks = [g.check for g in stage.gates] + [t.check for t in runbook.triggers if t.check]
    found: list[str] = []
    for check in checks:
        if check.against is not None and check.against.baseline is not None:
            name = baseline_stage(runbook, stage, check.against.baseline)
            if name is not None and name not in found:
                found.append(name)
    return found


def baseline_for(
    runbook: Runbook, stage: Stage, check: Comparison, snapshots: Mapping[str, Snapshot] | None
) -> Baseline | None:
    """The baseline `check` compares with while `stage` is judged, from the exit snapshots
    at hand (stage id → its latest exit snapshot; None: nobody looked); None when it names
    no baseline."""
    if check.against is None or check.against.baseline is None:
        return None
    name = baseline_stage(runbook, stage, check.against.baseline)
    if name is None:
        return Baseline(None, missing=f"{stage.id} is the first stage: there is no previous one")
    if snapshots is None:
        return Baseline(name, missing=f"{name}'s exit snapshot was not looked up")
    snapshot = snapshots.get(name)
    if snapshot is None:
        return Baseline(name, missing=f"{name} has no exit snapshot yet")
    if snapshot.damaged is not None:
        return Baseline(
            name, missing=f"{name}'s exit snapshot is damaged: {snapshot.damaged}", damaged=True
        )
    result = snapshot.results.get(check.query)
    if result is None:
        return Baseline(
            name, at=snapshot.at, missing=f"{name}'s exit snapshot holds no {check.query}"
        )
    return Baseline(name, result, snapshot.at)
