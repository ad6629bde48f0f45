"""Only the confirming key may run a probe with side effects. Once, opening the sign-off
dialog of the v1 deprecation step POSTed a test import before the operator pressed Enter;
now a GET probe runs on opening, a POST one on Enter (once), and signs when it passes."""

from __future__ import annotations

from pathlib import Path

from cutover.demo.rlm import RLMServer
from cutover.record.events import Kind
from cutover.tui.screens.signoff import SignOffScreen
from tui import conftest
from tui.conftest import fixed_app, until, visible_text
from tui.test_console import select_step

POST_PROBE = """
[probes.api]
url = "{url}/process-full"
method = "POST"
json = {{ user_id = "test", storage_path = "test.json" }}
expect_status = 200
timeout = "5s"
"""


async def test_a_post_probe_runs_only_when_enter_confirms_the_sign_off(tmp_path: Path, monkeypatch):
    with RLMServer() as rlm:
        monkeypatch.setattr(conftest, "PROBE", POST_PROBE.format(url=rlm.url))
        app = fixed_app(tmp_path, stage="prep", probe=True)

        def posts() -> int:
            return sum(1 for r in rlm.requests if r.method == "POST")

        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: "Backup taken" in visible_text(app))
            await select_step(pilot, app, "backup")
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, SignOffScreen))
            await pilot.pause(0.5)
            assert "runs when you press Enter" in visible_text(app)
            assert posts() == 0  # opening the dialog changed nothing
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, SignOffScreen))
            assert posts() == 1
        signed = [e for e in app.session.journal.read().events if e.kind == Kind.SIGNOFF]
        assert signed[-1].get("step") == "backup" and signed[-1].get("probe")
