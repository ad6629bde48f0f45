"""A watcher stopped while its rollback is in flight: SIGTERM lets the rollback finish and
journal its outcome before the watcher exits 0; kill -9 leaves an intent the next watcher
settles, and traffic still ends at 0 %."""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from watch_world import (
    WatchProcess,
    demo_world,
    journal_events,
    to_failing_canary,
    world_env,
)

PROJECT, KEY = "soulprint-landing", "V2_ROLLOUT_PERCENT"


def refuse_instant(world) -> None:
    """The platform refuses the instant rollback (as on a plan that cannot go back that
    far): the rollback builds, which takes the while these tests stop the watcher in."""
    world.vercel.fail_next(
        402, "plan_limit", "upgrade to roll back", method="POST", path_prefix="/v1/projects/"
    )


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cutover-watch-test-", ignore_cleanup_errors=True) as d:
        yield Path(d)


def test_sigterm_mid_rollback_lets_it_finish_and_journal_it_then_exits_0(scratch: Path) -> None:
    with demo_world(scratch, notify=False) as world:
        env = world_env(world.environ)
        watcher = WatchProcess(world.runbook_path, env, scratch / "watch.log")
        try:
            to_failing_canary(world, watcher, env)
            world.vercel.build_seconds = 4.0  # the rollback's redeploy takes a while
            refuse_instant(world)
            watcher.wait_for("ROLLING BACK", timeout=120)
            watcher.wait_for("QUEUED")
            code = watcher.stop(signal.SIGTERM, timeout=60)
        finally:
            watcher.kill()
        live = world.vercel.live_value(PROJECT, KEY)

    assert code == 0, watcher.output
    said = watcher.output
    assert "SIGTERM received: the rollback in flight finishes first" in said
    assert said.index("✓ rolled back") < said.index("watcher stopped (SIGTERM)")
    assert live == "0"
    kinds = [e["kind"] for e in journal_events(world.dir / "journal.jsonl")]
    assert kinds[-2:] == ["rollback.intent", "rollback.done"]


def test_kill_9_mid_rollback_the_next_watcher_settles_it_and_traffic_ends_at_0(
    scratch: Path,
) -> None:
    with demo_world(scratch, notify=False) as world:
        env = world_env(world.environ)
        first = WatchProcess(world.runbook_path, env, scratch / "first.log")
        try:
            to_failing_canary(world, first, env)
            world.vercel.build_seconds = 30.0  # still BUILDING when the watcher dies
            refuse_instant(world)
            first.wait_for("ROLLING BACK", timeout=120)
            first.wait_for("QUEUED")
        finally:
            first.kill()
        events = journal_events(world.dir / "journal.jsonl")
        assert events[-1]["kind"] == "rollback.intent", "killed between intent and outcome"

        world.vercel.build_seconds = 0.3
        second = WatchProcess(world.runbook_path, env, scratch / "second.log")
        try:
            second.wait_for("has no outcome yet: pending")
            second.wait_for("✓ rolled back", timeout=120)
            second.wait_for("stage canary (50 %) → off (0 %)")
            code = second.stop()
        finally:
            second.kill()
        live = world.vercel.live_value(PROJECT, KEY)

    assert code == 0, second.output
    assert live == "0"
    events = journal_events(world.dir / "journal.jsonl")
    intents = [e for e in events if e["kind"] == "rollback.intent"]
    assert len(intents) == 2
    assert intents[1]["supersedes"] == intents[0]["action"]
    assert {e["actor"] for e in intents} == {"watch (tester)"}
    assert events[-1]["kind"] == "rollback.done"


def test_a_second_sigterm_stops_the_rollback_and_says_its_intent_stays_open(
    scratch: Path,
) -> None:
    with demo_world(scratch, notify=False) as world:
        env = world_env(world.environ)
        watcher = WatchProcess(world.runbook_path, env, scratch / "watch.log")
        try:
            to_failing_canary(world, watcher, env)
            world.vercel.build_seconds = 60.0  # the redeploy will not be READY in time
            refuse_instant(world)
            watcher.wait_for("ROLLING BACK", timeout=120)
            watcher.wait_for("QUEUED")
            watcher.proc.send_signal(signal.SIGTERM)
            watcher.wait_for("the rollback in flight finishes first")
            code = watcher.stop(signal.SIGTERM, timeout=60)
        finally:
            watcher.kill()

    assert code == 0, watcher.output
    said = watcher.output
    assert "✗ the rollback was stopped before it was verified: its intent stays" in said
    assert said.splitlines()[-1].endswith("watcher stopped (SIGTERM)")
    kinds = [e["kind"] for e in journal_events(world.dir / "journal.jsonl")]
    assert kinds[-1] == "rollback.intent", "no outcome journaled for what is not known"
