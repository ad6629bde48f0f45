"""A teammate's move is a move in flight, not tampering. Once, while a rollback ran from
another shell, the console showed "⚠ DRIFT … someone changed it outside cutover" for ~7 s;
a journaled intent from any process is now shown as what it is."""

from __future__ import annotations

from pathlib import Path

from cutover.record.events import Kind
from cutover.record.journal import Journal
from tui.conftest import fixed_app, until, visible_text


async def test_a_rollback_journaled_by_another_shell_reads_in_flight_not_drift(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary" in visible_text(app))
        other = Journal(app.session.runbook.journal_path, actor="alice", host="jump2")
        other.append(
            Kind.ROLLBACK_INTENT, action="r9", from_stage="canary", to_stage="prep",
            from_percent=None, journal_percent=10, to_percent=0, reason="pager",
        )  # fmt: skip
        (tmp_path / "flag" / "percent").write_text("0\n")  # her PATCH landed
        app.read_flag()
        await until(pilot, lambda: "⟳ rollback by alice" in visible_text(app))
        await pilot.pause(0.5)
        assert "DRIFT" not in visible_text(app)
