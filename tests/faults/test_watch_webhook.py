"""A webhook that fails (answers 500, or nobody listens) never stops or slows the watcher,
is said once, never shows its URL (the URL is the secret), and gets what queued once back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cutover.record.evidence import read_evidence
from watch_world import (
    HOOK_ENV,
    HOOK_SECRET,
    Core,
    metric_database,
    metric_runbook,
    receiver,
    set_metric,
)


@pytest.fixture
async def metric_dsn(empty_dsn: str) -> str:
    return await metric_database(empty_dsn)


async def until(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_failing_webhook_is_said_once_and_gets_the_queue_when_it_answers_again(
    tmp_path: Path, metric_dsn: str
) -> None:
    with receiver() as hook:
        hook.down = True
        core = Core(metric_runbook(tmp_path, notify=True), metric_dsn, **{HOOK_ENV: hook.url})
        await core.start()
        await core.advance_by_alice()
        await core.cycles(10)
        await set_metric(metric_dsn, "rate", 80)
        await core.cycles(4)
        await until(lambda: hook.posts >= 4)  # it kept retrying meanwhile

        # Evaluation went on while every post failed.
        runs = read_evidence(core.session.evidence_path).runs
        assert any(r.name == "rate_ok" and r.verdict == "fail" for r in runs)
        assert len(core.said("notify: the webhook in CUTOVER_WATCH_HOOK failed (HTTP 500)")) == 1

        hook.down = False
        await until(lambda: "trigger rate_low FIRED" in hook.received())
        await core.close()
        told = hook.received()

    assert "watcher started" in told
    assert "gate rate_ok: PASS → FAIL" in told
    assert len(core.said("notify: CUTOVER_WATCH_HOOK works again")) == 1
    assert HOOK_SECRET not in "\n".join(core.lines)


async def test_a_webhook_nobody_listens_on_is_said_once_without_its_url(
    tmp_path: Path, metric_dsn: str
) -> None:
    with receiver() as hook:
        url = hook.url
    # The receiver is gone: its port refuses connections now.
    core = Core(metric_runbook(tmp_path, notify=True), metric_dsn, **{HOOK_ENV: url})
    await core.start()
    await core.advance_by_alice()
    await core.cycles(20)
    await until(lambda: core.said("notify: the webhook in CUTOVER_WATCH_HOOK failed"))
    await core.close()

    failed = core.said("notify: the webhook in CUTOVER_WATCH_HOOK failed")
    assert len(failed) == 1
    assert "ConnectError" in failed[0]
    assert HOOK_SECRET not in "\n".join(core.lines)
    assert core.said("canary (50 %, visit 2): gates rate_ok PASS")  # it watched all along
    assert len(core.said("message(s) for CUTOVER_WATCH_HOOK were not delivered")) == 1
