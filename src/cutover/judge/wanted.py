"""Which queries a check of a stage runs: known before any judging is imported, so `check`
sends its queries first and imports what judges them while Postgres works."""

from __future__ import annotations

from cutover.runbook.model import Runbook, Stage
from cutover.sources.derived import inputs


def queries_for(runbook: Runbook, stage: Stage, *, rollback: bool = False) -> list[str]:
    """The query ids a check of this stage reads, in runbook order, each once; with
    `rollback`, the rollback checklist's gates' too."""
    wanted = {g.check.query for g in stage.gates} | {
        t.check.query for t in runbook.triggers if t.check is not None and t.live_in(stage.id)
    }
    if rollback and runbook.rollback is not None:
        wanted |= {g.check.query for g in runbook.rollback.gates}
    # A derived query is computed from others: they run for it.
    return inputs(runbook.queries, [q for q in runbook.queries if q in wanted])
