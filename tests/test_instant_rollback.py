"""Seconds to safety: a rollback re-points production at a deployment known to carry the
target (Vercel's Instant Rollback) instead of building one; where it cannot, it builds and
says why. Against the loopback Vercel (real HTTP), the CLI as real processes where the
process matters; scenes are set in-process with a fast-polling flag."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from cutover.demo.control import ControlServer
from cutover.judge.session import Session
from cutover.runbook import loader
from cutover.runbook.problems import ProblemsFound
from cutover.traffic import actions
from cutover.traffic.flags import CommandFlag, VercelFlag
from moves_world import (
    KEY,
    PROJECT,
    TOKEN,
    cli,
    environ,
    fake_vercel,
    journal,
    start_cli,
    wait_for,
    write_runbook,
)

LONG_BUILD_S = 45.0  # what a rollback must not wait for


def flag_for(session: Session, fake, **overrides) -> VercelFlag:
    """The flag as a command opens it (it knows what the journal says deployments carry),
    polling fast."""
    options = dict(
        project=PROJECT,
        key=KEY,
        token=TOKEN,
        base_url=fake.url,
        poll_interval_s=0.05,
        retry_base_s=0.01,
        known=lambda: session.state()[0].deployments,
        rollback=session.runbook.flag.rollback,
    )
    options.update(overrides)
    return VercelFlag(**options)


async def advance(session: Session, fake, *percents: int) -> list[str]:
    """Advance stage by stage; the deployment each advance built."""
    built = []
    flag = flag_for(session, fake)
    try:
        for percent in percents:
            outcome = await actions.advance(session, flag, report=None, confirm=percent)
            assert outcome.ok, outcome.message
            built.append(fake.production_id)
    finally:
        await flag.aclose()
    return built


def rollback_posts(fake) -> list[str]:
    """The deployments an Instant Rollback was asked for, in order."""
    return [
        r.path.rsplit("/", 1)[1]
        for r in fake.requests
        if r.method == "POST" and "/rollback/" in r.path
    ]


def builds(fake) -> int:
    return sum(r.method == "POST" and r.path == "/v13/deployments" for r in fake.requests)


def last_done(book: Path) -> dict:
    return next(e for e in reversed(journal(book)) if e["kind"] == "rollback.done")


# -- instant rollback, from every stage ----------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "to", "lands_on"),
    [((10,), None, 0), ((10, 50), None, 0), ((10, 50), "canary", 1)],
    ids=["canary", "half", "half-to-canary"],
)
async def test_instant_rollback_from_every_stage_and_with_to(tmp_path, stages, to, lands_on):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        first = fake.production_id
        built = await advance(Session(loader.load(book), env), fake, *stages)
        target = [first, *built][lands_on]
        percent = [0, *stages][lands_on]
        fake.build_seconds = LONG_BUILD_S  # a build now would take 45 s: it must not happen
        fake.clear_requests()
        started = time.monotonic()
        args = ["rollback", "--yes", "--reason", "pager", "--observe", "0"]
        ran = cli(book, env, *(args + (["--to", to] if to else [])))
        took = time.monotonic() - started
        serving, live = fake.production_id, fake.live_value(PROJECT, KEY)
        stored, pinned = fake.env_value(KEY), fake.pinned
        status = cli(book, env, "status", "--json")

    assert ran.code == 0, ran.output
    assert rollback_posts(fake) == [target] and builds(fake) == 0
    assert (serving, live, stored, pinned) == (target, str(percent), str(percent), True)
    assert took < 10  # a process start and a few round trips, not a build
    done = last_done(book)
    assert done["how"] == "instant" and done["deployment"] == target
    assert done["effect"].startswith("live in ")
    assert f"by instant rollback to {target} (built " in done["effect"]
    assert f"carries {percent} %)" in done["effect"]
    assert done["pinned"] == target
    assert f"live in {done['live_s']:.1f} s by instant rollback to {target}" in ran.stdout
    assert "pushes to main will not go live until an advance promotes" in ran.stdout
    shown = json.loads(status.stdout)
    assert shown["pinned"]["deployment"] == target and shown["drift"] is None
    assert shown["percent"]["read"] == percent and shown["percent"]["live"] is True


async def test_the_newest_deployment_known_to_carry_the_target_is_chosen(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        session = Session(loader.load(book), environ(fake))
        first = fake.production_id
        await advance(session, fake, 10)
        flag = flag_for(session, fake)
        try:
            back = await actions.stepback(session, flag, reason="blip")  # builds one with 0
            assert back.ok and fake.build_seconds < 1
            newest_zero = fake.production_id
            await advance(session, fake, 10)
            fake.clear_requests()
            outcome = await actions.rollback(session, flag, reason="pager")
        finally:
            await flag.aclose()

    assert outcome.ok
    assert newest_zero != first and rollback_posts(fake) == [newest_zero]
    known = session.state()[0].deployments
    assert known[first].percent == 0 and known[first].seen == "read"  # live before the first
    assert known[newest_zero].percent == 0 and known[newest_zero].served_at is not None


async def test_a_failing_build_during_a_rollback_does_not_matter(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        await advance(Session(loader.load(book), env), fake, 10)
        fake.fail_builds = True  # every build ends ERROR, after 45 s
        fake.build_seconds = LONG_BUILD_S
        fake.clear_requests()
        ran = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
        live = fake.live_value(PROJECT, KEY)

    assert ran.code == 0, ran.output
    assert live == "0" and builds(fake) == 0 and len(rollback_posts(fake)) == 1


# -- where it cannot: the build, said --------------------------------------------------------


async def test_a_hobby_plan_refusal_falls_back_to_the_redeploy_and_says_why(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        fake.hobby = True  # only the immediately previous production deployment
        env = environ(fake)
        await advance(Session(loader.load(book), env), fake, 10, 50)
        fake.clear_requests()
        ran = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
        live, posts, built = fake.live_value(PROJECT, KEY), rollback_posts(fake), builds(fake)

    assert ran.code == 0, ran.output
    assert "no instant rollback: Vercel refused the instant rollback to dpl_" in ran.stdout
    assert "HTTP 402" in ran.stdout and "upgrade to Pro" in ran.stdout
    assert "PATCH + redeploy instead" in ran.stdout
    assert len(posts) == 1 and built == 1 and live == "0"
    done = last_done(book)
    assert done["how"] == "build" and "HTTP 402" in done["fallback"]
    assert "pinned" not in done  # a build serves production by itself


@pytest.mark.parametrize("asked", ["--yes", "--instant"])
async def test_an_instant_rollback_that_reverts_commits_is_not_taken_unless_asked(tmp_path, asked):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        first = fake.production_id
        await advance(Session(loader.load(book), env), fake, 10)
        pushed = fake.push("fix footer", sha="c2f1e0a" + "0" * 33)  # a deploy from main
        wait_for(lambda: fake.production_id == pushed, what="the push to go live")
        fake.clear_requests()
        flags = ["--yes"] if asked == "--yes" else ["--yes", "--instant"]
        ran = cli(book, env, "rollback", *flags, "--reason", "pager", "--observe", "0")
        live, posts, built = fake.live_value(PROJECT, KEY), rollback_posts(fake), builds(fake)
        serving = fake.production_id

    assert ran.code == 0, ran.output
    assert live == "0"
    if asked == "--yes":
        assert "would also revert 1 commit deployed since: c2f1e0a 'fix footer'" in ran.stdout
        assert "cutover rollback --instant" in ran.stdout
        assert posts == [] and built == 1 and serving not in (first, pushed)
    else:
        assert posts == [first] and built == 0 and serving == first


async def test_a_rollback_that_must_build_backs_off_one_build_per_step(tmp_path):
    book = write_runbook(tmp_path, flag='rollback = "redeploy"')
    with fake_vercel() as fake:
        session = Session(loader.load(book), environ(fake))
        await advance(session, fake, 10)
        fake.fail_builds = True
        fake.clear_requests()
        lines: list[str] = []
        flag = flag_for(session, fake)
        try:
            outcome = await actions.rollback(
                session,
                flag,
                reason="pager",
                progress=lines.append,
                attempts=3,
                retry_delay_s=0.01,
                build_backoff_s=(0.3, 0.6),
            )
        finally:
            await flag.aclose()
    posts = [r.at for r in fake.requests if r.method == "POST" and r.path == "/v13/deployments"]

    assert not outcome.ok and len(posts) == 3 and rollback_posts(fake) == []
    assert posts[1] - posts[0] >= 0.3 and posts[2] - posts[1] >= 0.6
    waits = [line for line in lines if "one new build per back-off step" in line]
    assert len(waits) == 2 and "retrying in 0.3s" in waits[0] and "retrying in 0.6s" in waits[1]
    assert "ended ERROR" in waits[0]


async def test_a_slow_build_is_waited_for_not_built_again(tmp_path):
    book = write_runbook(tmp_path, flag='rollback = "redeploy"')
    with fake_vercel() as fake:
        session = Session(loader.load(book), environ(fake))
        await advance(session, fake, 10)
        fake.build_seconds = 1.0
        lines: list[str] = []
        flag = flag_for(session, fake, deploy_timeout_s=0.3)
        try:
            outcome = await actions.rollback(
                session, flag, reason="pager", progress=lines.append, build_backoff_s=(0.2,)
            )
        finally:
            await flag.aclose()

    assert outcome.ok and builds(fake) == 2  # the advance's and this rollback's, once
    assert any("started for 0 % by an earlier attempt" in line for line in lines)


# -- interrupted, concurrent, refused ---------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["kill-9", "sighup"])
async def test_a_rollback_stopped_between_the_post_and_the_patch_is_settled(tmp_path, sig):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        first = fake.production_id
        await advance(Session(loader.load(book), env), fake, 10)
        # The variable's PATCH hangs: production already serves the old deployment.
        fake.fail_next(503, "unavailable", "stalled", method="PATCH", delay=2.0)
        fake.clear_requests()
        proc = start_cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
        wait_for(lambda: any(r.method == "PATCH" for r in fake.requests), what="the PATCH")
        assert rollback_posts(fake) == [first] and fake.env_value(KEY) == "10"
        proc.send_signal(sig)
        code = proc.wait(30)
        proc.communicate()
        ran = cli(book, env, "status", "--json")
        stored, live = fake.env_value(KEY), fake.live_value(PROJECT, KEY)

    assert (stored, live) == ("0", "0")
    done = last_done(book)
    status = json.loads(ran.stdout)
    assert status["pending"] is None and status["pinned"]["deployment"] == first
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert done["reconciled"] is True and done["pinned"] == first
        assert "the variable set to 0 % after the interruption" in done["verified"]
        assert "reconciled: rollback to 0 % by tester was interrupted but took effect" in (
            ran.stderr
        )
    else:  # the terminal went away: the rollback finished on its own
        assert code == 0 and done["how"] == "instant" and "reconciled" not in done


async def test_two_rollbacks_at_once_go_back_once(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        await advance(Session(loader.load(book), env), fake, 10)
        fake.clear_requests()
        args = ("rollback", "--yes", "--reason", "pager", "--observe", "0")
        first, second = start_cli(book, env, *args), start_cli(book, env, *args)
        outs = [p.communicate(timeout=60) for p in (first, second)]
        live = fake.live_value(PROJECT, KEY)

    assert first.returncode == 0 and second.returncode == 0, outs
    assert len(rollback_posts(fake)) == 1 and builds(fake) == 0 and live == "0"
    dones = [e for e in journal(book) if e["kind"] == "rollback.done"]
    assert len(dones) == 2 and sum(bool(e.get("unchanged")) for e in dones) == 1


async def test_a_refused_token_from_a_file_is_fixed_while_the_rollback_waits(tmp_path):
    token_file = tmp_path / "vercel-token"
    token_file.write_text(TOKEN + "\n")
    book = write_runbook(tmp_path, flag='token_file = "vercel-token"')
    with fake_vercel() as fake:
        env = environ(fake, token="")  # no token in the environment: the file is the one
        session = Session(loader.load(book), env)
        await advance(session, fake, 10)
        token_file.write_text("vcp_an-old-revoked-token-4242\n")
        lines: list[str] = []
        from cutover.traffic.flags import session_flag

        flag = session_flag(session)
        try:
            rolling = asyncio.create_task(
                actions.rollback(session, flag, reason="pager", progress=lines.append)
            )
            while not any("waiting for the token file to change" in line for line in lines):
                assert not rolling.done(), lines
                await asyncio.sleep(0.05)
            token_file.write_text(TOKEN + "\n")  # the operator fixes it
            outcome = await asyncio.wait_for(rolling, 15)
        finally:
            await flag.aclose()
        live = fake.live_value(PROJECT, KEY)

    assert outcome.ok and live == "0"
    refused = next(line for line in lines if "401" in line)
    assert f"the token in {token_file}" in refused and "write a valid token" in refused
    written = (tmp_path / "journal.jsonl").read_text()
    for text in ["\n".join(lines), written]:
        assert TOKEN not in text and "old-revoked" not in text


async def test_a_refused_token_from_the_environment_stops_and_says_what_to_fix(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        session = Session(loader.load(book), environ(fake))
        await advance(session, fake, 10)
        fake.clear_requests()
        lines: list[str] = []
        flag = flag_for(session, fake, token=TOKEN + "-revoked")
        try:
            outcome = await asyncio.wait_for(
                actions.rollback(session, flag, reason="pager", progress=lines.append), 10
            )
        finally:
            await flag.aclose()

    assert not outcome.ok and outcome.attempts == 1
    assert "Vercel refuses the token in $VERCEL_TOKEN: export a valid token" in outcome.message
    assert "stopped" in "\n".join(lines) and "fix it while this retries" not in "\n".join(lines)
    failed = journal(book)[-1]
    assert failed["kind"] == "rollback.failed" and "stopped retrying" in failed["error"]
    assert not any(r.method in ("PATCH", "POST") for r in fake.requests)


async def test_instant_rollback_then_advance_promotes_the_new_build(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        session = Session(loader.load(book), environ(fake))
        await advance(session, fake, 10)
        flag = flag_for(session, fake)
        try:
            back = await actions.rollback(session, flag, reason="pager")
            pinned = session.state()[0].pinned
            again = await actions.advance(session, flag, report=None, confirm=10)
        finally:
            await flag.aclose()
        serving, follows = fake.production_id, not fake.pinned

    assert back.ok and pinned is not None and again.ok
    promotes = [r.path for r in fake.requests if "/promote/" in r.path]
    assert promotes == [f"/v10/projects/{PROJECT}/promote/{serving}"] and follows
    done = journal(book)[-1]
    assert done["kind"] == "advance.done" and done["promoted"] == serving
    assert done["pinned"] is None and session.state()[0].pinned is None
    assert "promoted (production was pinned)" in again.message


# -- the command kind, the runbook, the demo's knobs ------------------------------------------


async def test_a_command_flag_runs_its_rollback_command_first_and_set_when_it_fails(tmp_path):
    (tmp_path / "p").write_text("50\n")
    get, set_ = f"cat {tmp_path}/p", f"echo {{percent}} > {tmp_path}/p && echo set >> {tmp_path}/s"
    works = CommandFlag(get, set_, rollback=f"echo {{percent}} > {tmp_path}/p")
    broken = CommandFlag(get, set_, rollback="echo no >&2; exit 3")
    lines: list[str] = []
    state = await works.roll_back(0, lines.append)
    assert state.percent == 0 and not (tmp_path / "s").exists()
    assert state.how.startswith("the rollback command")
    (tmp_path / "p").write_text("50\n")
    from cutover.traffic.attempts import attempts

    tried = await attempts(broken, 0, lines.append, None, 0.01, move="rollback")
    assert tried.read_back is not None and tried.read_back.percent == 0
    assert "the rollback command exited 3" in tried.fallback
    assert (tmp_path / "s").read_text() == "set\n"


def test_the_runbook_says_how_a_rollback_reaches_traffic(tmp_path):
    book = write_runbook(tmp_path, flag='rollback = "redeploy"\ntoken_file = "~/tok"')
    flag = loader.load(book).flag
    assert flag.rollback == "redeploy" and flag.token_file == Path("~/tok").expanduser()
    assert loader.load(write_runbook(tmp_path / "d")).flag.rollback == "instant"
    wrong = write_runbook(tmp_path / "bad", flag='rollback = "sideways"')
    line = wrong.read_text().splitlines().index('rollback = "sideways"') + 1
    with pytest.raises(ProblemsFound) as bad:
        loader.load(wrong)
    assert f"{wrong}:{line}:12:" in str(bad.value)
    assert 'rollback must be "instant"' in str(bad.value) and "'sideways'" in str(bad.value)


def test_the_demo_s_control_surface_turns_the_loopback_vercel_s_knobs():
    with fake_vercel() as fake:
        control = ControlServer(traffic=None, vercel=fake)  # type: ignore[arg-type]
        code, shown = control.handle("POST", "/vercel", {"build_seconds": 45, "hobby": True})
        bad, _ = control.handle("POST", "/vercel", {"build_seconds": "soon"})
    assert code == 200 and shown["build_seconds"] == 45.0 and shown["hobby"] is True
    assert shown["production"]["carries"] == {KEY: "0"} and fake.build_seconds == 45.0
    assert bad == 400


async def test_the_console_says_what_an_instant_rollback_would_revert_and_i_takes_it(tmp_path):
    from cutover.tui.app import CutoverApp
    from cutover.tui.screens.moves import RollbackScreen

    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        first = fake.production_id
        await advance(Session(loader.load(book), env), fake, 10)
        pushed = fake.push("fix footer", sha="c2f1e0a" + "0" * 33)
        wait_for(lambda: fake.production_id == pushed, what="the push to go live")
        fake.build_seconds = LONG_BUILD_S
        app = CutoverApp(Session(loader.load(book), env), probe_poll_s=None)
        async with app.run_test(size=(120, 36)) as pilot:

            async def until(condition, timeout: float = 15.0) -> None:
                for _ in range(int(timeout / 0.05)):
                    if condition():
                        return
                    await pilot.pause(0.05)
                raise AssertionError("condition not met in time")

            await until(lambda: app.flag_state is not None)
            await pilot.press("ctrl+r")
            dialog = app.screen
            assert isinstance(dialog, RollbackScreen)
            await until(lambda: dialog.reverts)
            how = str(dialog.query_one("#rollback-how").render())
            assert "would also revert 1 commit deployed since: c2f1e0a 'fix footer'" in how
            assert "PATCH + redeploy" in how
            await pilot.press("i")
            await until(lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
            result = str(app.screen.query_one("#result").render())
        serving = fake.production_id

    assert serving == first and builds(fake) == 1  # the advance's only
    assert "by instant rollback to " + first in result.replace("\n", " ")
