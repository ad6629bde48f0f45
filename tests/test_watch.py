"""`cutover watch` against the demo world (embedded Postgres with simulated imports, the
loopback Vercel, a real webhook receiver): it rides out a database restart, says each change
once, records the outage in the evidence, and rolls back a failing canary where the stage
arms it, through the journaled path, as `watch`."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cutover.demo.world import World
from cutover.record.evidence import evidence_path, read_evidence
from cutover.record.snapshots import snapshots_dir
from cutover.traffic import actions
from watch_world import (
    HOOK_ENV,
    HOOK_SECRET,
    Core,
    WatchProcess,
    cutover_cli,
    demo_world,
    journal_events,
    metric_database,
    metric_runbook,
    receiver,
    set_metric,
    wait_until,
    world_env,
)

PROJECT, KEY = "soulprint-landing", "V2_ROLLOUT_PERCENT"


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Outside pytest's basetemp (see tests/test_demo_world.py): Postgres may run as another user.
    with tempfile.TemporaryDirectory(prefix="cutover-watch-test-", ignore_cleanup_errors=True) as d:
        yield Path(d)


@pytest.fixture
def world(scratch: Path) -> Iterator[World]:
    with demo_world(scratch) as w:
        yield w


def test_the_watcher_rides_out_a_database_restart_and_rolls_back_a_failing_canary(
    world: World, scratch: Path
) -> None:
    journal = world.dir / "journal.jsonl"
    with receiver() as hook:
        env = world_env(world.environ, **{HOOK_ENV: hook.url})
        watcher = WatchProcess(world.runbook_path, env, scratch / "watch.log")
        try:
            watcher.wait_for("watcher started")
            watcher.wait_for("off (0 %, visit 1): gates none")
            advanced = cutover_cli(world, env, "advance", "--confirm", "50")
            assert advanced.returncode == 0, advanced.stdout + advanced.stderr
            watcher.wait_for("stage off (0 %) → canary (50 %), visit 2")
            watcher.wait_for("canary (50 %, visit 2): gates success")
            watcher.wait_for("snapshot: canary entry")

            # The database goes away for a few seconds and comes back by itself.
            before_outage = watcher.lines()
            restart = threading.Thread(target=world.database.restart, args=(6.0,))
            restart.start()
            watcher.wait_for("database outage", after=before_outage)
            watcher.wait_for("database reachable again", after=before_outage, timeout=90)
            restart.join()
            said = watcher.output.splitlines()[before_outage:]
            assert len([x for x in said if "database outage" in x]) == 1, watcher.output
            assert len([x for x in said if "database reachable again" in x]) == 1
            # Not said gate by gate: the outage line said it once.
            assert not [x for x in said if "gate " in x and "→ WAIT" in x]

            runs = read_evidence(evidence_path(journal)).runs
            waits = [r for r in runs if r.stage == "canary" and r.verdict in ("wait", "unknown")]
            assert any("unreachable" in r.reason for r in waits), runs
            assert {r.by for r in waits} == {"watch"}

            # v2 starts failing every import: the armed trigger fires and the watcher rolls back.
            world.traffic.set_knobs(rate=3000.0, v2_failure_rate=1.0)
            watcher.wait_for("! trigger success_below_95 FIRED", timeout=120)
            watcher.wait_for("ROLLING BACK canary (50 %) to 0 %")
            watcher.wait_for("✓ rolled back", timeout=60)
            watcher.wait_for("stage canary (50 %) → off (0 %)")
            assert world.vercel.live_value(PROJECT, KEY) == "0"

            code = watcher.stop()
        finally:
            watcher.kill()
        assert code == 0, watcher.output
        assert watcher.output.splitlines()[-1].endswith("watcher stopped (SIGTERM)")
        wait_until(lambda: "watcher stopped" in hook.received(), what="the stop notification")
        told = hook.received()

    events = journal_events(journal)
    rollbacks = [e for e in events if e["kind"] == "rollback.intent"]
    assert len(rollbacks) == 1, "rolled back once, not again while the trigger stayed fired"
    assert rollbacks[0]["actor"] == "watch (tester)"
    assert "success_below_95" in rollbacks[0]["reason"]
    done = [e for e in events if e["kind"] == "rollback.done"]
    assert len(done) == 1
    assert done[0]["actor"] == "watch (tester)"
    assert done[0]["flag_percent"] == 0

    for news in (
        "watcher started",
        "database outage",
        "database reachable again",
        "trigger success_below_95 FIRED",
        "ROLLING BACK",
        "✓ rolled back",
        "watcher stopped",
    ):
        assert news in told
    assert "tester: advance off → canary" in told  # another's action, told as it happened

    # Snapshots: the canary's entry, and its exit taken when the watcher saw it leave.
    assert (snapshots_dir(journal) / "canary.2.entry.json").exists()
    assert (snapshots_dir(journal) / "canary.2.exit.json").exists()

    # The webhook's URL carries a secret: never in the log, the journal or the evidence.
    assert HOOK_SECRET not in watcher.output
    assert HOOK_SECRET not in journal.read_text(encoding="utf-8")
    assert HOOK_SECRET not in evidence_path(journal).read_text(encoding="utf-8")


# ------------------------------------------------- the core on a manual clock, one process


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


@pytest.fixture
async def core(tmp_path: Path, metric_dsn: str, request: pytest.FixtureRequest) -> Core:
    options = getattr(request, "param", {})
    c = Core(metric_runbook(tmp_path, **options), metric_dsn)
    await c.start()
    await c.advance_by_alice()
    yield c
    await c.close()


async def test_each_change_is_said_once_not_at_every_evaluation(core: Core) -> None:
    await core.cycles(20)
    assert core.said("tester:") == [], "its own actions are not said back"
    assert len(core.said("alice: advance off → canary")) == 1
    assert len(core.said("stage off (0 %) → canary (50 %)")) == 1
    assert len(core.said("canary (50 %, visit 2): gates rate_ok PASS, no_stuck PASS")) == 1
    quiet = len(core.lines)

    await set_metric(core.env["CUTOVER_DATABASE_URL"], "rate", 80)
    await core.cycles(20)

    news = core.lines[quiet:]
    assert len(news) == 3, news
    assert "gate rate_ok: PASS → FAIL (80 < 95)" in news[0]
    assert "! trigger rate_low FIRED (critical: roll back now): 80 < 90" in news[1]
    assert "canary: hold restarted: held 0s of 1h; restarted" in news[2]
    assert core.flag.path.read_text().strip() == "50", "nothing armed: the flag is not touched"


async def test_the_watchers_evidence_holds_the_stage_and_it_says_when_and_why_it_restarted(
    core: Core,
) -> None:
    await core.cycles(2 * 61)  # an hour and a minute at the rate query's 30 s
    assert len(core.said("canary: hold ✓ 1h met")) == 1

    await set_metric(core.env["CUTOVER_DATABASE_URL"], "stuck", 1)
    await core.cycles(4)

    restarted = core.said("canary: hold restarted")
    assert len(restarted) == 1
    assert "no_stuck: FAIL" in restarted[0]
    runs = read_evidence(core.session.evidence_path).runs
    assert {r.by for r in runs} == {"watch", "check"}  # alice's check, then the watcher
    rate = [r for r in runs if r.name == "rate_ok" and r.by == "watch"]
    assert len(rate) == 1 and rate[0].count >= 120, "a run of identical verdicts is one record"


async def test_a_pause_longer_than_max_gap_restarts_the_hold_and_says_so(core: Core) -> None:
    await core.cycles(10)
    core.clock.advance(20 * 60)  # the laptop slept: nobody evaluated for 20 minutes
    await core.cycles(1)
    restarted = core.said("canary: hold restarted")
    assert len(restarted) == 1
    assert "gap (no evaluation)" in restarted[0]


@pytest.mark.parametrize("core", [{"trigger_for": "10m"}], indirect=True)
async def test_a_trigger_with_for_is_said_pending_then_fired(core: Core) -> None:
    await core.cycles(2)
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "rate", 80)
    await core.cycles(2)
    assert len(core.said("trigger rate_low pending: its condition holds; it fires after 10m")) == 1
    assert core.said("FIRED") == []

    await core.cycles(20)  # ten more minutes, by the evidence
    assert len(core.said("! trigger rate_low FIRED")) == 1


@pytest.mark.parametrize("core", [{"auto_rollback": True}], indirect=True)
async def test_an_armed_trigger_rolls_back_once_through_the_journal_as_watch(core: Core) -> None:
    await core.cycles(2)
    await set_metric(core.env["CUTOVER_DATABASE_URL"], "rate", 80)
    await core.cycles(1)
    task = core.watcher._tasks.get("rollback")
    assert task is not None
    await task
    await core.cycles(20)  # the trigger stays fired at 0 %: no second rollback

    assert core.flag.path.read_text().strip() == "0"
    events = core.session.journal.read().events
    intents = [e for e in events if e.kind == "rollback.intent"]
    assert len(intents) == 1
    assert intents[0].actor == "watch (tester)"
    assert intents[0].get("reason").startswith("auto_rollback: trigger rate_low fired (")
    assert len(core.said("ROLLING BACK canary (50 %) to 0 %")) == 1
    assert len(core.said("✓ rolled back")) == 1
    assert len(core.said("stage canary (50 %) → off (0 %)")) == 1


@pytest.mark.parametrize("core", [{"checkpoint": "1h"}], indirect=True)
async def test_snapshots_at_entry_each_checkpoint_and_the_exit_the_watcher_saw(
    core: Core,
) -> None:
    await core.cycles(2 * 121)  # two hours and a half: two checkpoints
    folder = snapshots_dir(core.book.journal_path)
    taken = sorted(p.name for p in folder.iterdir())
    assert taken == [
        "canary.2.checkpoint-1.json",
        "canary.2.checkpoint-2.json",
        "canary.2.entry.json",
    ]  # off was left before the watcher had any result to keep
    outcome = await actions.rollback(core.alice(), core.flag, reason="drill")
    assert outcome.ok
    await core.cycles(1)
    assert (folder / "canary.2.exit.json").exists()


async def test_the_evidence_follower_keeps_only_what_a_judgement_needs(core: Core) -> None:
    dsn = core.env["CUTOVER_DATABASE_URL"]

    async def judged_alike() -> None:
        # What the watcher judged from what it kept is what the whole evidence says.
        watcher = core.watcher
        assert watcher.current is not None and watcher.hold is not None
        everything = read_evidence(core.session.evidence_path).runs
        full = core.session.judge_hold(
            watcher.current, core.clock.now(), watcher.report, runs=everything
        )
        kept = watcher.hold
        assert (kept.held_s, kept.since, kept.restarted_at, kept.restart_reason, kept.met) == (
            full.held_s,
            full.since,
            full.restarted_at,
            full.restart_reason,
            full.met,
        )

    for _ in range(4):  # four restarts of the hold, each with its own runs
        await core.cycles(10)
        await judged_alike()
        await set_metric(dsn, "rate", 93)  # WAIT-free FAIL of the gate, the trigger quiet
        await core.cycles(3)
        await judged_alike()
        await set_metric(dsn, "rate", 99)
    core.clock.advance(20 * 60)  # and a gap
    await core.cycles(130)
    await judged_alike()
    assert core.watcher.hold is not None and core.watcher.hold.met

    gates = [r for r in core.watcher.tail.runs if r.what == "gate"]
    everything = read_evidence(core.session.evidence_path).runs
    assert len([r for r in everything if r.what == "gate"]) >= 10
    assert len(gates) <= 4, "each gate's runs from its last restart on, not all of them"

    await actions.rollback(core.alice(), core.flag, reason="drill")
    core.clock.advance(3 * 3600)  # past the triggers' window
    await core.cycles(2)
    # The canary's gate runs and the old trigger runs are gone; only fresh trigger runs stay.
    assert {r.what for r in core.watcher.tail.runs} == {"trigger"}
    assert all(r.last >= core.clock.now() - timedelta(hours=1) for r in core.watcher.tail.runs)


# ------------------------------------------------------------------ the command itself


def metric_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(CUTOVER_DATABASE_URL=dsn, USER="tester")
    env.pop("SSH_CONNECTION", None)
    env.pop("SUDO_USER", None)
    return env


def watch_cli(runbook: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), "watch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=runbook.parent,
    )


async def test_a_second_watcher_says_who_is_watching_and_exits_2(
    tmp_path: Path, metric_dsn: str
) -> None:
    runbook = metric_runbook(tmp_path)
    env = metric_env(metric_dsn)
    first = WatchProcess(runbook, env, tmp_path / "first.log")
    try:
        first.wait_for("off (0 %, visit 1): gates none")
        second = watch_cli(runbook, env)
        again = watch_cli(runbook, env, "--once")
        code = first.stop()
    finally:
        first.kill()

    assert second.returncode == 2
    assert second.stdout == ""
    host = socket.gethostname()
    assert second.stderr.startswith(
        "cutover watch: another watcher is already watching this journal: watch (tester) on "
        f"{host} (pid {first.proc.pid}) since "
    )
    assert again.returncode == 2
    lock = tmp_path / "journal.jsonl.watch.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert code == 0
    assert lock.read_text() == "", "an unheld lock names nobody"
    after = watch_cli(runbook, env, "--once")  # the lock went with the first watcher
    assert after.returncode == 0, after.stderr


async def test_watch_once_judges_every_query_records_it_and_exits_0(
    tmp_path: Path, metric_dsn: str
) -> None:
    runbook = metric_runbook(tmp_path)

    ran = watch_cli(runbook, metric_env(metric_dsn), "--once")

    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "watcher started as watch (tester): stage off (0 %, visit 1), 2 queries" in lines[0]
    assert "off (0 %, visit 1): gates none; triggers 2 quiet; no hold" in ran.stdout
    assert lines[-1].endswith("watcher stopped")
    runs = read_evidence(evidence_path(tmp_path / "journal.jsonl")).runs
    assert {(r.name, r.verdict, r.by) for r in runs} == {
        ("rate_low", "quiet", "watch"),
        ("stuck_high", "quiet", "watch"),
    }


async def test_watch_without_a_database_to_watch_says_what_to_set_and_exits_2(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}

    ran = watch_cli(metric_runbook(tmp_path), env)

    assert ran.returncode == 2
    assert ran.stderr.startswith("cutover watch: CUTOVER_DATABASE_URL is not set")
