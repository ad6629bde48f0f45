"""A reader that leaves early is no error. Once, `cutover evidence | head` printed
"[Errno 32] Broken pipe" and exited 2."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from cutover.record.evidence import GATE, Evaluation, EvidenceStore, evidence_path
from moves_world import PLAIN_STAGES, write_runbook


def test_evidence_into_head_exits_quietly(tmp_path):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    store = EvidenceStore(evidence_path(tmp_path / "journal.jsonl"), by="watch", break_s=1)
    start = datetime.now(UTC) - timedelta(hours=3)
    for i in range(3000):  # runs of one evaluation each: thousands of lines to print
        verdict = "pass" if i % 2 else "wait"
        at = start + timedelta(seconds=i * 2)
        store.record([Evaluation(GATE, "g", "off", verdict, 1.0, None, "", "", at)])
    store.flush()
    line = (
        f"{sys.executable} -m cutover.cli --runbook {book} evidence --since 1d | head -2; "
        'echo "status ${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, timeout=60,
        env={**os.environ, "USER": "tester"},
    )  # fmt: skip
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == "status 0"
    assert len(done.stdout.splitlines()) == 3
