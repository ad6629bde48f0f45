"""A damaged exit snapshot says so and stands for nothing. Once, a truncated exit snapshot
read as "no exit snapshot yet", and with an older visit's snapshot beside it the gates
silently PASSed against that one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cutover.judge.compare import baseline_for
from cutover.judge.gates import judge
from cutover.judge.verdicts import Verdict, Why
from cutover.record import snapshots
from cutover.runbook.model import Against, Comparison, NewRows, Runbook, Stage
from cutover.sources.results import QueryResult

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NO_NEW_ERRORS = Comparison(
    "errors", "==", 0, new_rows=NewRows("pattern"), against=Against(baseline="canary")
)


def errors(*patterns: str, at: datetime = AT) -> QueryResult:
    return QueryResult("errors", ("pattern",), tuple((p,) for p in patterns), ran_at=at)


def stages() -> tuple[Runbook, Stage]:
    canary = Stage(id="canary", title="Canary", percent=10)
    ramp = Stage(id="ramp", title="Ramp", percent=50)
    book = Runbook.__new__(Runbook)
    object.__setattr__(book, "stages", (canary, ramp))
    return book, ramp


def test_a_truncated_exit_snapshot_is_damaged_and_no_older_visit_stands_in(tmp_path):
    folder = tmp_path / "snapshots"
    # The first visit's exit knew both patterns; the second visit's (the one that counts)
    # saw a new one, and its file was then cut short.
    both = {"errors": errors("timeout", "OOM killed")}
    snapshots.take(folder, "canary", 1, snapshots.EXIT, both, AT - timedelta(days=2))
    path = snapshots.take(
        folder, "canary", 2, snapshots.EXIT, {"errors": errors("timeout")}, AT - timedelta(hours=1)
    )
    assert path is not None
    path.write_bytes(path.read_bytes()[:40])

    found = snapshots.latest(folder, "canary")
    assert found is not None and found.visit == 2
    assert found.damaged == "canary.2.exit.json is truncated"

    book, ramp = stages()
    baseline = baseline_for(book, ramp, NO_NEW_ERRORS, {"canary": found})
    judged = judge(NO_NEW_ERRORS, errors("OOM killed"), baseline=baseline)
    assert judged.gate_verdict is Verdict.WAIT  # not a PASS against visit 1
    assert judged.why is Why.FAILED and judged.trigger_fired is None
    assert "canary's exit snapshot is damaged: canary.2.exit.json is truncated" in judged.reason


def test_the_newest_visit_wins_over_a_later_written_older_visit(tmp_path):
    folder = tmp_path / "snapshots"
    snapshots.take(folder, "canary", 3, snapshots.EXIT, {"errors": errors("a")}, AT)
    snapshots.take(folder, "canary", 1, snapshots.EXIT, {"errors": errors("b")}, AT)
    found = snapshots.latest(folder, "canary")
    assert found is not None and found.visit == 3 and found.damaged is None
