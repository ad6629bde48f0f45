"""An emergency rollback from the console reaches the platform even while the console's own
event loop is busy (redrawing a dialog, filling a big panel, stuck): the move runs on a
thread of its own with a flag of its own, so nothing the console draws or fetches holds its
PATCH back (it used to wait ~150 ms behind the dialog it had just opened)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from cutover.demo.vercel_api import FakeVercel
from cutover.judge.session import Session
from cutover.record.journal import Journal
from cutover.runbook import loader as runbook
from cutover.tui.app import CutoverApp
from tui.conftest import T0, scripted, until, write_runbook

TOKEN = "tok-rollback-thread"
VERCEL_FLAG = """[flag]
kind = "vercel"
project = "soulprint-landing"
key = "V2_ROLLOUT_PERCENT"
token_env = "VERCEL_TOKEN"
"""


def console_at_canary(tmp_path, fake: FakeVercel) -> CutoverApp:
    book = write_runbook(tmp_path, percent=10)
    text = book.read_text().replace('[flag]\nkind = "file"\npath = "flag/percent"\n', VERCEL_FLAG)
    book.write_text(text)
    env = {"USER": "ops", "VERCEL_API_URL": fake.url, "VERCEL_TOKEN": TOKEN}
    session = Session(runbook.load(book), env)
    setup = Journal(
        session.runbook.journal_path, actor="ops", clock=lambda: T0 - timedelta(hours=3)
    )
    for step in ("ready", "backup"):
        setup.append(
            "signoff", stage="prep", step=step, visit=1, note="", override=False, probe=None
        )
    setup.append(
        "advance.intent",
        action="a1",
        from_stage="prep",
        to_stage="canary",
        from_percent=0,
        to_percent=10,
        reason="",
    )
    setup.append("advance.done", action="a1", flag_percent=10, verified="flag reads 10 %", took_s=1)
    return CutoverApp(
        session,
        clock=lambda: T0,
        runner_factory=lambda: scripted(lambda: T0),
        probe_poll_s=None,
        flag_poll_s=3600,
    )  # fmt: skip


async def test_the_rollback_reaches_the_platform_while_the_consoles_loop_is_stuck(tmp_path):
    with FakeVercel(token=TOKEN, initial_value="10", build_seconds=0) as fake:
        app = console_at_canary(tmp_path, fake)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.flag_state is not None and app.flag_state.percent == 10)
            fake.slow_seconds = 1.0  # each answer takes a while: the PATCH comes well after
            await pilot.press("ctrl+r", "y")
            await until(
                pilot, lambda: any(t.name == "cutover-rollback" for t in threading.enumerate())
            )
            # From here the console's loop does nothing at all until the PATCH has arrived
            # (or 30 s have passed): whatever sends it is not waiting for this loop.
            stuck_at = time.monotonic()
            while time.monotonic() - stuck_at < 30:
                if any(r.method == "PATCH" for r in fake.requests):
                    break
                time.sleep(0.01)
            patches = [r for r in fake.requests if r.method == "PATCH"]
            assert patches, "no PATCH while the console's loop was stuck"
            assert patches[0].at > stuck_at
            fake.slow_seconds = 0
            await until(pilot, lambda: app.move_in_flight() is None, 30)
        assert fake.env_value("V2_ROLLOUT_PERCENT") == "0"
        kinds = [e.kind for e in app.session.journal.read().events]
        assert kinds[-2:] == ["rollback.intent", "rollback.done"]
