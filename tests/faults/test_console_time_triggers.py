"""A manual trigger (kind = "manual": raised by people, no query) must not break the console:
it reads no column and no query result, so nothing may ask it for one."""

from __future__ import annotations

from pathlib import Path

from tui.conftest import TIME_TRIGGERS, fixed_app, until, visible_text


async def test_a_runbook_with_manual_triggers_opens_the_console_and_judges_them(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", triggers=TIME_TRIGGERS)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "✓ PASS gate success" in visible_text(app))
        assert app.report is not None
        manual = {t.id: t for t in app.report.triggers if t.check is None}
        assert set(manual) == {"complaints", "corruption"}
        assert all(t.fired is False for t in manual.values())  # not raised: quiet, not unknown
        assert app.return_code is None  # still running
