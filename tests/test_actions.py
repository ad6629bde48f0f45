"""Advance, rollback and reconcile in-process, against the loopback Vercel API: what is sent,
in what order, what the journal says, and that traffic moves only when a build is READY."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cutover.judge.session import Session
from cutover.runbook import loader as runbook
from cutover.traffic import actions, settling
from cutover.traffic.flags import FlagError, VercelFlag
from moves_world import (
    KEY,
    PROJECT,
    TOKEN,
    environ,
    fake_vercel,
    journal,
    kinds,
    set_by_hand,
    write_runbook,
)


@pytest.fixture
def vercel():
    with fake_vercel(build_seconds=0.2) as fake:
        yield fake


@pytest.fixture
async def flag(vercel):
    f = make_flag(vercel)
    yield f
    await f.aclose()


def make_flag(fake, **overrides) -> VercelFlag:
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


def open_session(path: Path, fake, dsn: str | None = None) -> Session:
    return Session(runbook.load(path), environ(fake, dsn=dsn))


@pytest.fixture
def session(tmp_path, vercel) -> Session:
    return open_session(write_runbook(tmp_path), vercel)


class Progress:
    """Records each progress line with what traffic saw (the live deployment's value)."""

    def __init__(self, fake=None):
        self.fake = fake
        self.lines: list[tuple[str, str | None]] = []

    def __call__(self, line: str) -> None:
        live = self.fake.live_value(PROJECT, KEY) if self.fake else None
        self.lines.append((line, live))

    @property
    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines)


def calls(fake) -> list[str]:
    """The recorded requests as 'METHOD /path', deployment and env ids folded."""
    shown = []
    for r in fake.requests:
        parts = r.path.split("/")
        if r.path.startswith("/v13/deployments/"):
            parts[-1] = "{id}"
        if "/env/" in r.path:
            parts[-1] = "{env}"
        shown.append(f"{r.method} {'/'.join(parts)}")
    return shown


# A read: the env list, then its value, the deployment production serves (the project's
# production target) and the newest deployments (one still building may change what is
# live), those three at once.
READ = [
    f"GET /v10/projects/{PROJECT}/env",
    f"GET /v1/projects/{PROJECT}/env/{{env}}",
    f"GET /v9/projects/{PROJECT}",
    "GET /v6/deployments",
]


def is_read(seen: list[str]) -> bool:
    return seen[:1] == READ[:1] and sorted(seen[1:]) == sorted(READ[1:])


def assert_set_then_polled(fake, percent: int) -> None:
    """A read first (what traffic is at), then PATCH, read-back GET, the live deployment,
    POST redeploy, polling, then a fresh read."""
    seen = calls(fake)
    assert is_read(seen[: len(READ)]), seen
    head = [
        f"PATCH /v9/projects/{PROJECT}/env/{{env}}",
        f"GET /v1/projects/{PROJECT}/env/{{env}}",
        "GET /v6/deployments",
        "POST /v13/deployments",
    ]
    at = len(READ)
    assert seen[at : at + len(head)] == head
    polls = seen[at + len(head) : -len(READ)]
    assert polls and set(polls) == {"GET /v13/deployments/{id}"}
    assert is_read(seen[-len(READ) :])
    requests = fake.requests
    assert requests[at].body == {"value": str(percent)}
    post = requests[at + 3]
    assert post.query.get("forceNew") == "1"
    assert post.body["target"] == "production" and post.body["meta"] == {"action": "redeploy"}
    # It polled the deployment the POST created, not some other one.
    new_id = requests[at + 4].path.rsplit("/", 1)[1]
    assert new_id.startswith("dpl_") and new_id != post.body["deploymentId"]


def assert_traffic_moved_only_at_ready(progress: Progress, before: str, after: str) -> None:
    ready = next(i for i, (line, _) in enumerate(progress.lines) if line.endswith(" s)"))
    assert "READY" in progress.lines[ready][0]
    assert all(live == before for _, live in progress.lines[:ready]), progress.lines
    assert progress.lines[ready][1] == after


async def test_a_clean_advance_patches_reads_back_redeploys_polls_and_journals(
    session, flag, vercel
):
    progress = Progress(vercel)
    outcome = await actions.advance(session, flag, report=None, confirm=10, progress=progress)

    assert outcome.ok and outcome.to_stage == "canary" and outcome.attempts == 1
    assert_set_then_polled(vercel, 10)
    assert_traffic_moved_only_at_ready(progress, before="0", after="10")
    assert vercel.live_value(PROJECT, KEY) == "10"
    intent, done = journal(session.runbook.path)
    assert intent["kind"] == "advance.intent" and done["kind"] == "advance.done"
    assert (intent["from_percent"], intent["to_percent"], intent["to_stage"]) == (0, 10, "canary")
    assert done["action"] == intent["action"]
    assert done["flag_percent"] == 10
    assert "flag reads 10 %" in done["verified"] and "carries 10" in done["verified"]
    assert 0 < done["took_s"] < 10
    state, _ = session.state()
    assert (state.stage_id, state.percent, state.pending) == ("canary", 10, None)


async def test_a_clean_rollback_does_the_same_round_trip_back_to_zero(session, flag, vercel):
    await actions.advance(session, flag, report=None, confirm=10)
    vercel.clear_requests()
    progress = Progress(vercel)

    outcome = await actions.rollback(session, flag, reason="errors up", progress=progress)

    assert outcome.ok and outcome.to_percent == 0 and outcome.to_stage == "off"
    assert_set_then_polled(vercel, 0)
    assert_traffic_moved_only_at_ready(progress, before="10", after="0")
    events = journal(session.runbook.path)
    assert [e["kind"] for e in events[2:]] == ["rollback.intent", "rollback.done"]
    assert events[2]["reason"] == "errors up"
    assert "flag reads 0 %" in events[3]["verified"] and events[3]["took_s"] >= 0
    state, _ = session.state()
    assert (state.stage_id, state.percent) == ("off", 0)


# -- faults during advance --------------------------------------------------------------


async def test_advance_with_a_rejected_token_is_refused_before_anything_is_journaled(
    session, flag, vercel
):
    vercel.fail_next(401, "forbidden", "Not authorized")
    with pytest.raises(FlagError, match="401 unauthorized"):
        await actions.advance(session, flag, report=None, confirm=10)

    assert kinds(session.runbook.path) == []  # it never got as far as an intent
    assert not any(r.method == "PATCH" for r in vercel.requests)
    assert vercel.env_value(KEY) == "0"
    assert session.state()[0].stage_id == "off"


async def test_advance_against_a_missing_project_is_refused_and_says_not_found(
    session, flag, vercel
):
    vercel.fail_next(404, "not_found", "Project not found: soulprint-landing")
    with pytest.raises(FlagError, match="Project not found"):
        await actions.advance(session, flag, report=None, confirm=10)

    assert len(vercel.requests) == 1  # a 4xx is never retried
    assert kinds(session.runbook.path) == []
    assert session.state()[0].stage_id == "off"


async def test_advance_waits_out_a_429_retry_after_and_then_succeeds(session, flag, vercel):
    vercel.fail_next(429, "rate_limited", "Too many requests", retry_after=0.6, method="PATCH")
    outcome = await actions.advance(session, flag, report=None, confirm=10)

    assert outcome.ok
    patches = [r for r in vercel.requests if r.method == "PATCH"]
    assert len(patches) == 2
    # The retry backoff is 0.01 s here: only Retry-After explains the wait.
    assert patches[1].at - patches[0].at >= 0.55
    assert kinds(session.runbook.path) == ["advance.intent", "advance.done"]
    assert vercel.live_value(PROJECT, KEY) == "10"


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_advance_retries_a_500_once_and_succeeds(session, flag, vercel, method):
    vercel.fail_next(500, "internal_server_error", "An unexpected error occurred", method=method)
    outcome = await actions.advance(session, flag, report=None, confirm=10)

    assert outcome.ok and outcome.attempts == 1  # retried inside the flag, not from scratch
    sent = calls(vercel)
    path = "/v10/projects/{p}/env" if method == "GET" else "/v9/projects/{p}/env/{{env}}"
    assert sent.count(f"{method} {path.format(p=PROJECT)}") == (3 if method == "GET" else 2)
    assert kinds(session.runbook.path) == ["advance.intent", "advance.done"]


async def test_advance_survives_slow_answers_within_the_timeout(session, vercel):
    vercel.slow_seconds = 0.4  # slow, but inside the client's 1.5 s timeout
    patient = make_flag(vercel, timeout_s=1.5, max_attempts=1)
    try:
        outcome = await actions.advance(session, patient, report=None, confirm=10)
    finally:
        await patient.aclose()
        vercel.slow_seconds = 0
    assert outcome.ok, outcome.message


async def test_advance_fails_when_answers_are_slower_than_the_timeout(session, vercel):
    vercel.slow_seconds = 0.5
    slow_flag = make_flag(vercel, timeout_s=0.2, max_attempts=2)
    try:
        with pytest.raises(FlagError, match=r"no answer within 0\.2 s"):
            await actions.advance(session, slow_flag, report=None, confirm=10)
    finally:
        await slow_flag.aclose()
        vercel.slow_seconds = 0
    assert kinds(session.runbook.path) == []
    assert vercel.env_value(KEY) == "0"


async def test_a_redeploy_that_ends_in_error_fails_the_advance_and_the_stage_stays(
    session, flag, vercel
):
    vercel.next_deployment_fails = True
    progress = Progress(vercel)
    outcome = await actions.advance(session, flag, report=None, confirm=10, progress=progress)

    assert not outcome.ok
    assert "ended ERROR" in outcome.message and "not live" in outcome.message
    failed = journal(session.runbook.path)[-1]
    assert failed["kind"] == "advance.failed" and "ended ERROR" in failed["error"]
    assert "ended ERROR" in progress.text
    state, _ = session.state()
    assert (state.stage_id, state.percent, state.pending) == ("off", 0, None)
    # The variable changed, but traffic never did: that is what "not live" means.
    assert vercel.env_value(KEY) == "10" and vercel.live_value(PROJECT, KEY) == "0"


# -- rollback retries until verified -----------------------------------------------------


async def test_rollback_keeps_retrying_through_failures_until_verified(session, flag, vercel):
    await actions.advance(session, flag, report=None, confirm=10)
    # The first answer refuses the read before the change: a rollback goes ahead anyway.
    # (A 401, 403 or 404 stops it instead: test_rollback_stops_on_a_refused_token.)
    vercel.fail_next(400, "bad_request", "Invalid request", times=3)  # never retried inside
    vercel.fail_next(503, "unavailable", "down", times=4, method="PATCH")  # a whole attempt
    progress = Progress(vercel)

    outcome = await actions.rollback(
        session, flag, reason="pager", progress=progress, retry_delay_s=0.01
    )

    assert outcome.ok and outcome.attempts == 4
    failures = [line for line, _ in progress.lines if line.startswith("attempt ")]
    assert [f.split(" failed")[0] for f in failures] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "400" in failures[0] and "503" in failures[2]
    assert all("retrying in" in f for f in failures)
    # a refused request will not pass by itself: the operator is told to fix it meanwhile
    assert "will not pass by itself" in failures[0]
    assert "will not pass by itself" not in failures[2]  # a 503 may
    events = journal(session.runbook.path)
    assert [e["kind"] for e in events[2:]] == ["rollback.intent", "rollback.done"]
    assert events[-1]["attempts"] == 4
    assert vercel.live_value(PROJECT, KEY) == "0"


async def test_rollback_retries_a_redeploy_that_ended_in_error(session, flag, vercel):
    await actions.advance(session, flag, report=None, confirm=10)
    vercel.next_deployment_fails = True
    progress = Progress()
    outcome = await actions.rollback(
        session, flag, reason="x", retry_delay_s=0.01, build_backoff_s=(0.01,), progress=progress
    )
    assert outcome.ok and outcome.attempts == 2
    assert "one new build per back-off step" in progress.text
    assert vercel.live_value(PROJECT, KEY) == "0"


async def test_rollback_with_bounded_attempts_gives_up_and_journals_the_failure(
    session, flag, vercel
):
    vercel.fail_next(400, "bad_request", "Invalid request", times=100)
    progress = Progress()
    outcome = await actions.rollback(
        session, flag, reason="x", progress=progress, attempts=3, retry_delay_s=0.01
    )
    assert not outcome.ok and outcome.attempts == 3
    assert "failed after 3 attempt(s)" in progress.text
    assert progress.text.count("retrying in") == 2
    assert kinds(session.runbook.path) == ["rollback.intent", "rollback.failed"]
    vercel.clear_faults()


async def test_rollback_retry_delay_backs_off(session, flag, vercel):
    vercel.fail_next(400, "bad_request", "Invalid request", times=100)
    progress = Progress()
    await actions.rollback(
        session, flag, reason="x", progress=progress, attempts=4, retry_delay_s=0.05
    )
    delays = [line.rsplit("retrying in ", 1)[1] for line, _ in progress.lines if "retrying" in line]
    assert delays == ["0.05s", "0.1s", "0.2s"]
    vercel.clear_faults()


# -- rollback acts on what the flag reads ------------------------------------------------


async def test_rollback_takes_a_hand_set_flag_to_zero_while_the_journal_says_zero(
    session, flag, vercel
):
    set_by_hand(vercel, 50)
    assert session.state()[0].percent == 0  # the journal still believes 0

    outcome = await actions.rollback(session, flag, reason="someone set 50 by hand")

    assert outcome.ok
    assert any(r.method == "PATCH" and r.body == {"value": "0"} for r in vercel.requests)
    assert vercel.live_value(PROJECT, KEY) == "0"
    assert kinds(session.runbook.path) == ["rollback.intent", "rollback.done"]


# -- guards ------------------------------------------------------------------------------

GUARDED = """
[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "{hold}"
{steps}
{gates}

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"

  [[stages.steps]]
  id = "no_complaints"
  text = "No complaints"

  [[stages.gates]]
  id = "never"
  query = "unknown"
  column = "ok"
  op = "=="
  value = 1

[[stages]]
id = "half"
title = "Half"
percent = 50
hold = "0s"
"""
STEP = '\n  [[stages.steps]]\n  id = "checked"\n  text = "Checked by hand"\n'
GATE = """
  [[stages.gates]]
  id = "fine"
  query = "{query}"
  column = "ok"
  op = "=="
  value = 1
"""


def guarded(tmp_path, vercel, *, hold="0s", step=False, gate_query=None, dsn=None) -> Session:
    stages = GUARDED.format(
        hold=hold,
        steps=STEP if step else "",
        gates=GATE.format(query=gate_query) if gate_query else "",
    )
    return open_session(write_runbook(tmp_path, stages), vercel, dsn)


async def assert_refused(session, flag, vercel, expected: str, **kwargs) -> None:
    kwargs.setdefault("confirm", 10)
    kwargs.setdefault("report", None)
    vercel.clear_requests()
    before = kinds(session.runbook.path)
    with pytest.raises(actions.Refused) as refused:
        await actions.advance(session, flag, **kwargs)
    assert expected in str(refused.value)
    assert kinds(session.runbook.path) == before  # not even an intent
    assert not any(r.method in ("PATCH", "POST") for r in vercel.requests)


async def test_advance_is_refused_while_a_step_is_unsigned(tmp_path, vercel, flag):
    session = guarded(tmp_path, vercel, step=True)
    await assert_refused(session, flag, vercel, "advance refused: 1 sign-off left")
    session.journal.append("signoff", stage="off", step="checked", visit=1, note="", override=False)
    assert (await actions.advance(session, flag, report=None, confirm=10)).ok


async def test_advance_is_refused_while_the_hold_runs(tmp_path, vercel, flag):
    session = guarded(tmp_path, vercel, hold="1h")
    await assert_refused(session, flag, vercel, "of hold left")


async def test_advance_is_refused_with_the_gate_s_reason_when_it_waits(
    tmp_path, vercel, flag, soulprint_dsn
):
    session = guarded(tmp_path, vercel, gate_query="unknown", dsn=soulprint_dsn)
    runner = session.runner()
    try:
        report, _ = await session.check(runner, session.runbook.stage("off"))
    finally:
        await runner.aclose()
    await assert_refused(session, flag, vercel, "gate fine is WAIT", report=report)
    # Without a verdict at all, advance is refused too: no data is never a PASS.
    await assert_refused(session, flag, vercel, "gates not checked yet")


async def test_advance_goes_through_when_the_gate_passes(tmp_path, vercel, flag, soulprint_dsn):
    session = guarded(tmp_path, vercel, gate_query="ok", dsn=soulprint_dsn)
    runner = session.runner()
    try:
        report, _ = await session.check(runner, session.runbook.stage("off"))
    finally:
        await runner.aclose()
    assert (await actions.advance(session, flag, report=report, confirm=10)).ok


async def test_advance_needs_the_typed_percent_to_match(session, flag, vercel):
    await assert_refused(session, flag, vercel, "you typed 50 but Canary runs at 10 %", confirm=50)


async def test_advance_never_skips_a_stage(session, flag, vercel):
    await assert_refused(
        session,
        flag,
        vercel,
        "one stage at a time: the next stage is canary, not half",
        to_stage="half",
        confirm=50,
    )
    await actions.advance(session, flag, report=None, confirm=10, to_stage="canary")
    assert session.state()[0].stage_id == "canary"
    await actions.advance(session, flag, report=None, confirm=50)
    await assert_refused(
        session, flag, vercel, "this is the last stage, not off", to_stage="off", confirm=0
    )
    # From the last stage, advance completes the cutover: guarded, touching no flag.
    vercel.clear_requests()
    done = await actions.advance(session, flag, report=None, confirm=50)
    assert done.ok and done.move == "complete"
    assert not any(r.method in ("PATCH", "POST") for r in vercel.requests)
    assert session.state()[0].completed is not None
    await assert_refused(session, flag, vercel, "the cutover is complete", confirm=50)


async def test_rollback_is_never_blocked_by_failing_gates_or_missing_signoffs(
    tmp_path, vercel, flag, soulprint_dsn
):
    session = guarded(tmp_path, vercel, dsn=soulprint_dsn)
    await actions.advance(session, flag, report=None, confirm=10)
    state, _ = session.state()
    assert state.stage_id == "canary" and "no_complaints" not in state.signoffs
    runner = session.runner()
    try:
        report, _ = await session.check(runner, session.runbook.stage("canary"))
    finally:
        await runner.aclose()
    assert report.gates[0].verdict.value == "wait"

    outcome = await actions.rollback(session, flag, reason="gate went dark")
    assert outcome.ok and session.state()[0].stage_id == "off"


# -- two actions at once -----------------------------------------------------------------


async def test_a_second_advance_is_refused_naming_who_holds_the_lock(session, flag, vercel):
    other = Session(session.runbook, {"USER": "alice"})
    with other.journal.action_lock("advance to 10 %"), pytest.raises(actions.Refused) as refused:
        await actions.advance(session, flag, report=None, confirm=10)
    message = str(refused.value)
    assert "alice" in message and f"pid {os.getpid()}" in message
    assert "'advance to 10 %'" in message
    assert journal(session.runbook.path) == []
    assert vercel.requests == []


async def test_a_rollback_never_waits_for_the_lock_it_preempts_whoever_holds_it(
    session, flag, vercel
):
    await actions.advance(session, flag, report=None, confirm=10)
    other = Session(session.runbook, {"USER": "alice"})
    progress = Progress()
    with other.journal.action_lock("advance to 50 %"):
        outcome = await asyncio.wait_for(
            actions.rollback(session, flag, reason="x", progress=progress), 10
        )
    assert outcome.ok
    preempting = progress.lines[0][0]
    assert "alice" in preempting and "'advance to 50 %'" in preempting
    assert "this rollback preempts it" in preempting
    assert vercel.live_value(PROJECT, KEY) == "0"


# -- reconciling a crashed action --------------------------------------------------------


def crashed_intent(session: Session, to_percent: int, to_stage: str) -> None:
    session.journal.append(
        "advance.intent",
        action="deadbeef0001",
        from_stage="off",
        to_stage=to_stage,
        from_percent=0,
        to_percent=to_percent,
        reason="",
    )


async def test_reconcile_records_done_when_the_flag_shows_the_change_live(session, flag, vercel):
    crashed_intent(session, 10, "canary")
    set_by_hand(vercel, 10)
    lines = await settling.reconcile_if_idle(session, flag)
    assert "took effect" in lines[0]
    done = journal(session.runbook.path)[-1]
    assert (done["kind"], done["reconciled"], done["action"]) == (
        "advance.done",
        True,
        "deadbeef0001",
    )
    assert session.state()[0].stage_id == "canary"


async def test_reconcile_records_failed_when_the_value_is_stored_but_not_live(
    session, flag, vercel
):
    crashed_intent(session, 10, "canary")
    vercel.next_deployment_fails = True
    with pytest.raises(FlagError):
        await flag.set(10)
    lines = await settling.reconcile_if_idle(session, flag)
    assert "did not take effect" in lines[0] and "not live" in lines[0]
    assert journal(session.runbook.path)[-1]["kind"] == "advance.failed"
    assert session.state()[0].stage_id == "off"


async def test_reconcile_leaves_an_action_in_flight_alone(session, flag, vercel):
    crashed_intent(session, 10, "canary")
    with Session(session.runbook, {"USER": "alice"}).journal.action_lock("advance to 10 %"):
        lines = await settling.reconcile_if_idle(session, flag)
    assert "in flight" in lines[0] and "alice" in lines[0]
    assert kinds(session.runbook.path) == ["advance.intent"]
    assert session.state()[0].pending is not None


# -- rollback only goes toward safety ------------------------------------------------------


async def test_rollback_to_a_stage_ahead_is_refused_it_would_be_an_unguarded_advance(
    session, flag, vercel
):
    await actions.advance(session, flag, report=None, confirm=10)
    vercel.clear_requests()
    with pytest.raises(actions.Refused) as refused:
        await actions.rollback(session, flag, reason="x", to_stage="half")
    assert "rollback goes back, not forward" in str(refused.value)
    assert vercel.requests == [] and kinds(session.runbook.path)[-1] == "advance.done"
    assert vercel.live_value(PROJECT, KEY) == "10"


async def test_rollback_to_an_earlier_stage_lands_at_its_percent(session, flag, vercel):
    await actions.advance(session, flag, report=None, confirm=10)
    await actions.advance(session, flag, report=None, confirm=50)
    outcome = await actions.rollback(session, flag, reason="x", to_stage="canary")
    assert outcome.ok and vercel.live_value(PROJECT, KEY) == "10"
    assert session.state()[0].stage_id == "canary"


TWO_DARK_STAGES = """
[[stages]]
id = "prerequisites"
title = "Prerequisites"
percent = 0
hold = "0s"

  [[stages.steps]]
  id = "migration"
  text = "Migration applied"

[[stages]]
id = "dark"
title = "Dark launch"
percent = 0
hold = "0s"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"
"""


async def test_rollback_from_the_first_stage_never_lands_in_a_later_zero_stage(
    tmp_path, vercel, flag
):
    session = open_session(write_runbook(tmp_path, TWO_DARK_STAGES), vercel)
    set_by_hand(vercel, 50)  # someone set it by hand before the first sign-off
    outcome = await actions.rollback(session, flag, reason="hand set")
    assert outcome.ok and outcome.to_stage == "prerequisites"
    assert session.state()[0].stage_id == "prerequisites"  # its sign-off still stands guard


async def test_stepback_goes_one_stage_back_and_needs_a_reason(session, flag, vercel):
    await actions.advance(session, flag, report=None, confirm=10)
    await actions.advance(session, flag, report=None, confirm=50)
    with pytest.raises(actions.Refused, match="needs a reason"):
        await actions.stepback(session, flag, reason=" ")
    outcome = await actions.stepback(session, flag, reason="too hot")
    assert outcome.ok and outcome.to_stage == "canary"
    assert vercel.live_value(PROJECT, KEY) == "10"
    assert kinds(session.runbook.path)[-2:] == ["stepback.intent", "stepback.done"]


async def test_advancing_to_a_stage_at_the_same_percent_touches_nothing(tmp_path, vercel):
    stages = """
[[stages]]
id = "full"
title = "Full"
percent = 100

[[stages]]
id = "deprecation"
title = "Deprecate v1"
percent = 100
"""
    book = write_runbook(tmp_path, stages)
    vercel_session = open_session(book, vercel)
    flag = make_flag(vercel)
    try:
        await flag.set(100)  # the world is already at 100 %, as the journal's first stage
        vercel.clear_requests()
        outcome = await actions.advance(vercel_session, flag, report=None, confirm=100)
    finally:
        await flag.aclose()
    assert outcome.ok and outcome.to_stage == "deprecation"
    assert not any(r.method in ("PATCH", "POST") for r in vercel.requests)
    done = journal(book)[-1]
    assert done["kind"] == "advance.done" and done["unchanged"] is True
