"""The rollback checklist is in the console. Once, after a rollback it never appeared in the
tree, `s` jumped to the prerequisites and the palette had nothing: the operator had to leave
the console to sign it. Now it heads the tree while it is open, and `s` signs its steps."""

from __future__ import annotations

from pathlib import Path

from cutover.record.events import Kind
from cutover.tui.screens.signoff import SignOffScreen
from cutover.tui.widgets.runbook_pane import CHECKLIST, RunbookPane
from tui.conftest import fixed_app, until, visible_text

CHECKLIST_TOML = """
[rollback]
title = "After a rollback: confirm v2 is drained"

  [[rollback.steps]]
  id = "errors_read"
  text = "Error patterns read and the cause understood"
"""


async def test_after_a_rollback_the_checklist_heads_the_tree_and_s_signs_it(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary", triggers=CHECKLIST_TOML)
    journal = app.session.journal
    journal.append(
        Kind.ROLLBACK_INTENT, action="r1", from_stage="canary", to_stage="prep",
        from_percent=10, journal_percent=10, to_percent=0, reason="drill",
    )  # fmt: skip
    journal.append(Kind.ROLLBACK_DONE, action="r1", flag_percent=0, verified="read back")
    (tmp_path / "flag" / "percent").write_text("0\n")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "⟲ After a rollback" in visible_text(app))
        pane = app.query_one(RunbookPane)
        assert pane.root.children[0].data.stage == CHECKLIST  # at the top
        pane.focus()
        pane.point_at_next_step(app.cstate)
        await pilot.pause()
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SignOffScreen))
        await pilot.press(*"read it", "enter")
        await until(pilot, lambda: not isinstance(app.screen, SignOffScreen))
        await until(pilot, lambda: "errors_read" in app.cstate.after_rollback.signoffs)
    signed = [e for e in journal.read().events if e.kind == Kind.SIGNOFF][-1]
    assert signed.get("step") == "errors_read" and signed.get("checklist") == "rollback"
