"""Recording evidence must not close the folder the journal lives in: in the demo that folder
holds the database's data, and Postgres (run as its own user when the demo runs as root)
must still reach it to restart: the demo's outage knob, which a watcher must ride out."""

from __future__ import annotations

import os
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cutover.demo.traffic import Knobs
from cutover.demo.world import World
from cutover.record.evidence import GATE, Evaluation, EvidenceStore
from watch_world import watch_runbook


def _one_evaluation() -> list[Evaluation]:
    at = datetime.now(UTC)
    return [Evaluation(GATE, "success", "canary", "pass", 99.0, None, "99 ≥ 95", "abc", at)]


def test_recording_evidence_leaves_a_folder_the_operator_named_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    os.chmod(folder, 0o755)
    store = EvidenceStore(folder / "journal.evidence.jsonl", by="watch")

    store.record(_one_evaluation())

    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "journal.evidence.jsonl").stat().st_mode) == 0o600


def test_the_demo_database_restarts_after_evidence_was_recorded_beside_its_journal() -> None:
    with tempfile.TemporaryDirectory(prefix="cutover-watch-fault-") as d:
        scratch = Path(d)
        world = World(
            scratch / "demo",
            runbook=watch_runbook(scratch / "source"),
            rate=1.0,
            build_seconds=0.3,
            knobs=Knobs(time_scale=600.0),
            seed=3,
        )
        with world:
            store = EvidenceStore(world.dir / "journal.evidence.jsonl", by="watch")
            store.record(_one_evaluation())
            old = world.database.pid

            world.database.restart(0.5)  # raised "Permission denied" from pg_ctl before

            assert world.database.pid not in (None, old)
