"""Moving traffic on a false belief, settling an interrupted move too early, a rollback
dropped with its terminal, and production touched for nothing: each once made the tool act
unsafely. Real CLI processes against the loopback Vercel API."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time

import pytest

from cutover.judge.session import Session
from cutover.runbook.loader import load
from cutover.traffic import actions
from cutover.traffic.flags import VercelFlag
from moves_world import (
    KEY,
    PROJECT,
    TOKEN,
    cli,
    cutover_argv,
    environ,
    fake_vercel,
    journal,
    kinds,
    set_by_hand,
    start_cli,
    wait_for,
    write_runbook,
)


def methods(fake) -> list[str]:
    return [r.method for r in fake.requests]


# -- 1. advance and step back read the flag first ------------------------------------------


def test_advance_refuses_while_the_flag_disagrees_with_the_journal(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        set_by_hand(fake, 0)  # an interrupted rollback that did take effect, or a hand edit
        fake.clear_requests()

        refused = cli(book, env, "advance", "--confirm", "50")
        back = cli(book, env, "stepback", "--yes", "--reason", "r")
        patched = "PATCH" in methods(fake)

    assert refused.code == 1, refused.output
    assert "the flag reads 0 % but the journal says canary (10 %)" in refused.stderr
    assert "cutover reconcile" in refused.stderr
    assert back.code == 1 and "the flag reads 0 %" in back.stderr
    assert not patched  # no traffic moved on a false belief
    assert kinds(book) == ["advance.intent", "advance.done"]


def test_reconcile_records_what_the_flag_reads_and_moves_the_journal_back(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        set_by_hand(fake, 0)
        ran = cli(book, env, "reconcile", "--note", "hand rollback in the dashboard")
        again = cli(book, env, "reconcile")
        status = cli(book, env, "status", "--json")
        advance = cli(book, env, "advance", "--confirm", "10")

    assert ran.code == 0, ran.output
    assert "the journal now says off (0 %)" in ran.stdout
    event = journal(book)[2]
    assert event["kind"] == "reconcile" and event["flag_percent"] == 0
    assert (event["from_stage"], event["to_stage"]) == ("canary", "off")
    assert event["note"] == "hand rollback in the dashboard"
    assert again.code == 0 and "nothing to reconcile" in again.stdout
    assert '"stage": "off"' in status.stdout and '"drift": null' in status.stdout
    # From the recorded stage, the canary is the next step again, never skipped.
    assert advance.code == 0, advance.output
    assert journal(book)[-2]["to_stage"] == "canary"


def test_reconcile_never_moves_the_journal_forward(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        set_by_hand(fake, 50)  # someone jumped to 50 % while the journal says off
        ran = cli(book, env, "reconcile")
        advance = cli(book, env, "advance", "--confirm", "10")

    assert ran.code == 1
    assert "no stage at or before off runs at 50 %" in ran.stderr
    assert journal(book)[-1]["to_stage"] == "off"
    assert advance.code == 1 and "the flag reads 50 %" in advance.stderr


def test_advance_journals_what_the_flag_read(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        assert cli(book, environ(fake), "advance", "--confirm", "10").code == 0
    intent = journal(book)[0]
    assert intent["from_percent"] == 0 and intent["flag_read"]["percent"] == 0
    assert intent["flag_read"]["live"] is True


# -- 2. an interrupted move settles only on a final state ----------------------------------


@pytest.mark.parametrize("ends", ["READY", "ERROR"])
def test_a_move_killed_while_its_redeploy_builds_settles_when_the_build_ends(tmp_path, ends):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=120) as fake:
        env = environ(fake)
        fake.next_deployment_fails = ends == "ERROR"
        proc = start_cli(book, env, "advance", "--confirm", "10")
        wait_for(lambda: "POST" in methods(fake), what="the redeploy")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        proc.communicate()

        early = cli(book, env, "status", "--json")
        early_kinds = kinds(book)
        fake.finish_builds()
        late = cli(book, env, "status", "--json")

    # While the build was not final, nothing was settled: it says what it waits on.
    assert early_kinds == ["advance.intent", "move.unsettled"], early_kinds
    assert journal(book)[1]["pending"].startswith("dpl_")
    assert "BUILDING" in journal(book)[1]["pending"] or "QUEUED" in journal(book)[1]["pending"]
    assert '"waiting_on": "dpl_' in early.stdout
    settled = journal(book)[-1]
    if ends == "READY":
        assert settled["kind"] == "advance.done" and settled["reconciled"] is True
        assert '"stage": "canary"' in late.stdout
    else:
        assert settled["kind"] == "advance.failed" and settled["reconciled"] is True
        assert '"stage": "off"' in late.stdout


# -- 3. a rollback in flight outlives its terminal ------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_mid_rollback_does_not_stop_it(tmp_path, sig):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        fake.build_seconds = 3
        fake.clear_requests()
        # A rollback that builds (the instant one is over before a signal could land).
        proc = start_cli(
            book, env, "rollback", "--yes", "--redeploy", "--reason", "pager", "--observe", "0"
        )
        wait_for(lambda: "POST" in methods(fake), what="the rollback's redeploy")
        proc.send_signal(sig)
        code = proc.wait(30)
        proc.communicate()
        live = fake.live_value(PROJECT, KEY)

    assert code == 0
    assert kinds(book)[-2:] == ["rollback.intent", "rollback.done"]
    assert live == "0"  # the redeploy carrying 0 % is what traffic sees
    if sig == signal.SIGHUP:
        log = (tmp_path / "detached.log").read_text()
        assert "SIGHUP received" in log and "rollback to 0 % verified" in log


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_dropped_terminal_mid_rollback_finishes_the_rollback(tmp_path):
    book = write_runbook(tmp_path)
    socket = f"cutover-test-{time.monotonic_ns()}"
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        fake.build_seconds = 3
        fake.clear_requests()
        argv = cutover_argv(
            book, "rollback", "--yes", "--redeploy", "--reason", "pager", "--observe", "0"
        )
        command = " ".join(f"'{a}'" for a in argv)
        tmux = ["tmux", "-L", socket]
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", "rb", "-x", "120", "-y", "30", command],
            env=env,
            check=True,
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: "POST" in methods(fake), what="the rollback's redeploy")
            # The SSH session drops: the terminal and everything on it get SIGHUP.
            subprocess.run([*tmux, "kill-server"], check=False)
            wait_for(lambda: kinds(book)[-1] == "rollback.done", timeout=30, what="the outcome")
            live = fake.live_value(PROJECT, KEY)
        finally:
            subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)

    assert live == "0"


# -- 4. a rollback that interrupts an advance records the flag's reading --------------------


async def test_a_rollback_that_interrupts_an_advance_records_what_the_flag_read(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=120) as fake:
        session = Session(load(book), environ(fake))
        flag = VercelFlag(
            project=PROJECT, key=KEY, token=TOKEN, base_url=fake.url, poll_interval_s=0.05
        )
        try:
            advancing = asyncio.create_task(actions.advance(session, flag, report=None, confirm=10))
            while "POST" not in methods(fake):
                await asyncio.sleep(0.02)
            advancing.cancel()  # the console stops an advance for an emergency rollback
            with pytest.raises(asyncio.CancelledError):
                await advancing
            fake.build_seconds = 0.2
            outcome = await actions.rollback(session, flag, reason="pager", retry_delay_s=0.05)
        finally:
            await flag.aclose()

    assert outcome.ok
    events = journal(book)
    assert [e["kind"] for e in events] == ["advance.intent", "rollback.intent", "rollback.done"]
    assert events[1]["supersedes"] == events[0]["action"]
    # The variable already held 10 when the rollback looked: that is what it records.
    assert events[2]["from_percent"] == 10
    assert outcome.from_percent == 10


# -- 5. a rollback to where the flag already is touches nothing -----------------------------


def test_a_rollback_at_zero_does_not_touch_production(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        ran = cli(book, environ(fake), "rollback", "--yes", "--reason", "drill", "--observe", "0")
        sent = methods(fake)

    assert ran.code == 0, ran.output
    assert "already reads 0 %" in ran.stdout
    assert "PATCH" not in sent and "POST" not in sent
    done = journal(book)[-1]
    assert done["kind"] == "rollback.done" and done["unchanged"] is True


def test_a_second_rollback_queued_behind_the_first_does_not_redeploy_again(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        fake.build_seconds = 2
        fake.clear_requests()
        first = start_cli(book, env, "rollback", "--yes", "--reason", "a", "--observe", "0")
        wait_for(lambda: "POST" in methods(fake), what="the first rollback's redeploy")
        second = cli(book, env, "rollback", "--yes", "--reason", "b", "--observe", "0")
        first.wait(30)
        first.communicate()
        posts = methods(fake).count("POST")

    assert first.returncode == 0 and second.code == 0, second.output
    assert posts == 1
    assert journal(book)[-1]["unchanged"] is True
