"""The Vercel flag against a real local HTTP server speaking Vercel's API (FakeVercel)."""

from __future__ import annotations

import asyncio
import doctest
import time
from pathlib import Path

import pytest

import cutover.traffic.flags.base
import cutover.traffic.flags.vercel
from cutover.demo.vercel_api import FakeVercel
from cutover.runbook import model
from cutover.traffic.flags import FlagError, VercelFlag, open_flag

TOKEN = "vcp_s3cr3t-token-never-shown-0123456789"
PROJECT = "soulprint-landing"
KEY = "V2_ROLLOUT_PERCENT"


@pytest.fixture
def vercel():
    with FakeVercel(
        token=TOKEN, project=PROJECT, key=KEY, initial_value="0", build_seconds=0.3
    ) as fake:
        yield fake


def make_flag(fake: FakeVercel, **overrides) -> VercelFlag:
    options = dict(
        project=PROJECT,
        key=KEY,
        token=TOKEN,
        base_url=fake.url,
        retry_base_s=0.01,
        poll_interval_s=0.05,
        timeout_s=2.0,
    )
    options.update(overrides)
    return VercelFlag(**options)


@pytest.fixture
async def flag(vercel):
    f = make_flag(vercel)
    yield f
    await f.aclose()


def post_deployment_id(line: str) -> str:
    return line.rsplit("→ ", 1)[1]


def assert_no_token(text: str) -> None:
    assert TOKEN not in text
    assert TOKEN[:12] not in text


def test_the_pure_helpers_doctests_hold():
    for module in (cutover.traffic.flags.vercel, cutover.traffic.flags.base):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0


async def test_reading_the_starting_world_shows_the_value_live(flag, vercel):
    state = await flag.read()
    assert (state.percent, state.raw, state.live_percent) == (0, "0", 0)
    assert state.in_effect and not state.needs_redeploy
    assert state.deployment_id.startswith("dpl_")
    assert f"{KEY}=0" in state.detail and "carries 0" in state.detail


async def test_a_clean_set_patches_reads_back_redeploys_and_waits_for_ready(flag, vercel):
    seen: list[tuple[str, str | None]] = []

    def progress(line: str) -> None:
        seen.append((line, vercel.live_value(PROJECT, KEY)))

    async def release_after_a_poll() -> None:
        # The build is held until the flag has polled it once, so "it waited" does not
        # depend on how fast this machine is (0.3 s builds ended before the first poll
        # on a loaded CI machine).
        while not any(r.method == "GET" and "/v13/deployments/" in r.path for r in vercel.requests):
            await asyncio.sleep(0.01)
        vercel.finish_builds()

    vercel.build_seconds = 600
    vercel.clear_requests()
    release = asyncio.create_task(release_after_a_poll())
    state = await flag.set(50, progress)
    release.cancel()  # a flag that never polled would leave it waiting

    assert state.percent == 50 and state.live_percent == 50 and state.in_effect
    env_id = vercel.project.envs[0].id
    calls = [f"{r.method} {r.path}" for r in vercel.requests]
    patch = calls.index(f"PATCH /v9/projects/{PROJECT}/env/{env_id}")
    assert calls[patch + 1] == f"GET /v1/projects/{PROJECT}/env/{env_id}"  # the readback
    assert calls[patch + 2] == "GET /v6/deployments"
    assert calls[patch + 3] == "POST /v13/deployments"
    new_id = post_deployment_id(seen[2][0])
    polls = [c for c in calls[patch + 4 :] if c == f"GET /v13/deployments/{new_id}"]
    assert len(polls) >= 2  # it waited through QUEUED/BUILDING
    assert vercel.requests[patch + 2].query == {
        "projectId": PROJECT,
        "target": "production",
        "state": "READY",
        "limit": "1",
    }
    assert vercel.requests[patch].body == {"value": "50"}
    post = vercel.requests[patch + 3]
    assert post.query == {"forceNew": "1"}
    assert post.body["target"] == "production" and post.body["meta"] == {"action": "redeploy"}
    assert post.body["name"] == PROJECT and post.body["deploymentId"].startswith("dpl_")

    lines = [line for line, _ in seen]
    assert lines[0] == f"PATCH {KEY}=50" and lines[1] == "read back 50"
    assert lines[2].startswith("redeploy from dpl_") and " → dpl_" in lines[2]
    assert lines[3].endswith(" QUEUED")  # what it waited through was said
    assert lines[-1].endswith(")") and " READY (" in lines[-1]
    # Traffic kept the old value until the new deployment was READY.
    assert all(live == "0" for line, live in seen if "READY" not in line)
    assert vercel.live_value(PROJECT, KEY) == "50"
    assert state.deployment_id == new_id


async def test_a_change_without_redeploy_reads_as_not_in_effect(vercel):
    flag = make_flag(vercel, redeploy=False)
    try:
        state = await flag.set(10)
    finally:
        await flag.aclose()
    assert state.percent == 10 and state.live_percent is None
    assert state.needs_redeploy and not state.in_effect
    assert "changed after the live deployment: needs a redeploy" in state.detail
    assert vercel.live_value(PROJECT, KEY) == "0"
    assert not any(r.method == "POST" for r in vercel.requests)


async def test_the_production_entry_is_used_not_a_preview_one(vercel):
    vercel.add_env(KEY, "99", target=["preview", "development"])
    vercel.project.envs.reverse()  # the preview entry now comes first in the list
    flag = make_flag(vercel)
    try:
        assert (await flag.read()).raw == "0"
    finally:
        await flag.aclose()


async def test_a_stored_value_above_100_is_reported_as_the_app_clamps_it(vercel):
    vercel.project.envs[0].value = "150"
    flag = make_flag(vercel)
    try:
        state = await flag.read()
    finally:
        await flag.aclose()
    assert state.raw == "150" and state.percent == 100
    assert "clamps it to 100" in state.detail


async def test_unauthorized_is_not_retried_and_never_shows_the_token(vercel):
    flag = make_flag(vercel, token=TOKEN + "-wrong")
    try:
        with pytest.raises(FlagError) as caught:
            await flag.read()
    finally:
        await flag.aclose()
    message = str(caught.value)
    assert "401" in message and "unauthorized" in message and "Not authorized" in message
    assert "GET /v10/projects/soulprint-landing/env" in message
    assert caught.value.retryable is False
    assert len(vercel.requests) == 1
    assert_no_token(message)


async def test_a_token_echoed_by_the_server_is_redacted(flag, vercel):
    vercel.fail_next(403, "forbidden", f"token {TOKEN} lacks scope")
    with pytest.raises(FlagError) as caught:
        await flag.read()
    assert_no_token(str(caught.value))
    assert "[token]" in str(caught.value)


async def test_an_unknown_project_is_a_404_naming_the_project(vercel):
    flag = make_flag(vercel, project="no-such-project")
    try:
        with pytest.raises(FlagError) as caught:
            await flag.read()
    finally:
        await flag.aclose()
    assert "404" in str(caught.value) and "not_found" in str(caught.value)
    assert "no-such-project" in str(caught.value)
    assert caught.value.retryable is False and len(vercel.requests) == 1


async def test_a_missing_env_var_says_to_create_it(flag, vercel):
    vercel.project.envs.clear()
    with pytest.raises(FlagError, match="has no env var V2_ROLLOUT_PERCENT for target production"):
        await flag.read()


async def test_rate_limiting_is_retried_after_the_retry_after_delay(flag, vercel):
    vercel.fail_next(429, "rate_limited", "Rate limit exceeded", retry_after=0.4)
    state = await flag.read()
    assert state.percent == 0
    first, second = vercel.requests[0], vercel.requests[1]
    assert first.path == second.path
    assert second.at - first.at >= 0.4


async def test_a_server_error_once_is_retried(flag, vercel):
    vercel.fail_next(500, "internal_server_error", "An unexpected error occurred")
    state = await flag.set(10)
    assert state.percent == 10 and state.in_effect
    first, retry = vercel.requests[0], vercel.requests[1]
    assert (first.method, first.path) == (retry.method, retry.path)


async def test_a_server_error_forever_gives_up_retryable(flag, vercel):
    vercel.fail_next(500, "internal_server_error", "An unexpected error occurred", times=100)
    with pytest.raises(FlagError) as caught:
        await flag.read()
    assert caught.value.retryable is True
    assert "gave up after 4 attempts" in str(caught.value) and "500" in str(caught.value)
    assert len(vercel.requests) == 4


async def test_a_failed_redeploy_post_is_not_sent_twice(flag, vercel):
    # A 500 on POST may still have started a build: a second POST could start another.
    vercel.fail_next(500, "internal_server_error", "boom", times=5, method="POST")
    with pytest.raises(FlagError) as caught:
        await flag.set(10)
    assert "redeploy failed" in str(caught.value)
    assert "V2_ROLLOUT_PERCENT IS changed but not live" in str(caught.value)
    assert caught.value.retryable is True
    assert [r.method for r in vercel.requests].count("POST") == 1
    assert vercel.env_value(KEY) == "10" and vercel.live_value(PROJECT, KEY) == "0"


async def test_slow_responses_beyond_the_client_timeout_fail_retryable(vercel):
    vercel.slow_seconds = 0.5
    flag = make_flag(vercel, timeout_s=0.1, max_attempts=2)
    started = time.monotonic()
    try:
        with pytest.raises(FlagError) as caught:
            await flag.read()
    finally:
        await flag.aclose()
        vercel.slow_seconds = 0
    assert caught.value.retryable is True
    assert "no answer within 0.1 s" in str(caught.value)
    assert time.monotonic() - started < 2


async def test_an_unreachable_api_is_a_retryable_connection_error(vercel):
    url = vercel.url
    vercel.stop()
    flag = VercelFlag(project=PROJECT, key=KEY, token=TOKEN, base_url=url, retry_base_s=0.01)
    try:
        with pytest.raises(FlagError, match="cannot connect") as caught:
            await flag.read()
    finally:
        await flag.aclose()
    assert caught.value.retryable is True
    assert_no_token(str(caught.value))


async def test_a_redeploy_ending_in_error_says_the_value_is_changed_but_not_live(flag, vercel):
    vercel.next_deployment_fails = True
    lines: list[str] = []
    with pytest.raises(FlagError) as caught:
        await flag.set(50, lines.append)
    message = str(caught.value)
    assert "ended ERROR" in message and "V2_ROLLOUT_PERCENT IS changed but not live" in message
    assert caught.value.retryable is False
    assert vercel.env_value(KEY) == "50" and vercel.live_value(PROJECT, KEY) == "0"
    state = await flag.read()
    assert state.percent == 50 and not state.in_effect


async def test_a_build_slower_than_the_deploy_timeout_is_reported(vercel):
    vercel.build_seconds = 5
    flag = make_flag(vercel, deploy_timeout_s=0.2)
    try:
        with pytest.raises(FlagError, match=r"still (QUEUED|BUILDING) after 0.2 s"):
            await flag.set(10)
    finally:
        await flag.aclose()


async def test_team_id_is_sent_on_every_request_when_configured():
    with FakeVercel(token=TOKEN, team_id="team_abc", build_seconds=0.1) as fake:
        flag = make_flag(fake, team_id="team_abc")
        try:
            state = await flag.set(10)
        finally:
            await flag.aclose()
        assert state.in_effect
        assert all(r.query.get("teamId") == "team_abc" for r in fake.requests)

        without = make_flag(fake)
        try:
            with pytest.raises(FlagError, match="403"):
                await without.read()
        finally:
            await without.aclose()


async def test_the_token_never_appears_in_errors_or_progress(flag, vercel):
    lines: list[str] = []
    await flag.set(10, lines.append)
    vercel.fail_next(500, "internal", f"failed for {TOKEN}", times=10)
    with pytest.raises(FlagError) as caught:
        await flag.set(20, lines.append)
    for text in [*lines, str(caught.value), repr(caught.value)]:
        assert_no_token(text)
    assert not any(TOKEN in repr(r) for r in vercel.requests)


async def test_percent_out_of_range_is_refused_before_any_request(flag, vercel):
    vercel.clear_requests()
    with pytest.raises(FlagError, match="0–100"):
        await flag.set(150)
    assert vercel.requests == []


async def test_open_flag_reads_the_token_and_api_url_from_the_environment(vercel):
    config = model.Flag(kind="vercel", project=PROJECT, key=KEY, token_env="MY_VERCEL_TOKEN")
    flag = open_flag(config, {"MY_VERCEL_TOKEN": TOKEN, "VERCEL_API_URL": vercel.url})
    try:
        assert flag.name == f"vercel:{PROJECT}/{KEY}"
        assert (await flag.read()).percent == 0
    finally:
        await flag.aclose()


def test_open_flag_names_a_missing_token_variable():
    config = model.Flag(kind="vercel", project=PROJECT, key=KEY, token_env="MY_VERCEL_TOKEN")
    with pytest.raises(FlagError, match="MY_VERCEL_TOKEN is not set"):
        open_flag(config, {"OTHER": TOKEN})


def test_open_flag_picks_file_and_command(tmp_path: Path):
    assert open_flag(model.Flag(kind="file", path=tmp_path / "p"), {}).name.startswith("file:")
    flag = open_flag(model.Flag(kind="command", get="cat x", set="echo {percent}"), {})
    assert flag.name == "command:cat x"
