"""`cutover advance`, `rollback` and `status` as real processes against the loopback Vercel
API and a real Postgres: crashes (kill -9), two consoles at once, drift, secrets, and
whether a rollback shows in traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from cutover.judge.session import Session
from cutover.runbook import loader as runbook
from cutover.sources import db
from cutover.traffic import actions
from cutover.traffic.flags import FlagError, VercelFlag
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
    patch_by_hand,
    set_by_hand,
    start_cli,
    wait_for,
    write_runbook,
)


def status_json(book: Path, env: dict) -> tuple[dict, str]:
    ran = cli(book, env, "status", "--json")
    assert ran.code == 0, ran.output
    return json.loads(ran.stdout), ran.stderr


async def advance_fast(book: Path, fake, dsn: str) -> None:
    """Advance one stage in-process, with a fast-polling flag: setting the scene, not the
    thing under test."""
    session = Session(runbook.load(book), environ(fake, dsn=dsn))
    stage = session.runbook.stage(session.state()[0].stage_id)
    report = None
    if stage.gates:
        runner = session.runner()
        try:
            report, _ = await session.check(runner, stage)
        finally:
            await runner.aclose()
    flag = VercelFlag(
        project=PROJECT, key=KEY, token=TOKEN, base_url=fake.url, poll_interval_s=0.05
    )
    following = session.runbook.stages[session.runbook.stage_index(stage.id) + 1]
    try:
        outcome = await actions.advance(session, flag, report=report, confirm=following.percent)
        assert outcome.ok, outcome.message
    finally:
        await flag.aclose()


# -- kill -9 between intent and outcome ----------------------------------------------------


def test_kill_9_after_the_redeploy_started_is_reconciled_as_done(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=3) as fake:
        env = environ(fake)
        proc = start_cli(book, env, "advance", "--confirm", "10")
        wait_for(lambda: any(r.method == "POST" for r in fake.requests), what="the redeploy")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(5) == -signal.SIGKILL
        proc.communicate()
        assert kinds(book) == ["advance.intent"]  # it died with no outcome
        assert fake.live_value(PROJECT, KEY) == "0"
        # The build it started goes on without it, as on Vercel.
        wait_for(lambda: fake.live_value(PROJECT, KEY) == "10", what="the build")

        status, told = status_json(book, env)

    assert "reconciled: advance to 10 % by tester was interrupted but took effect" in told
    intent, done = journal(book)
    assert done["kind"] == "advance.done" and done["reconciled"] is True
    assert done["action"] == intent["action"] and done["flag_percent"] == 10
    assert status["stage"] == "canary" and status["pending"] is None
    assert status["percent"]["read"] == 10 and status["drift"] is None


def test_kill_9_before_the_flag_changed_is_reconciled_as_not_done(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        fake.clear_requests()
        # A rollback journals its intent first, then reads the flag: it sits waiting for
        # that first answer when it is killed.
        fake.slow_seconds = 3
        proc = start_cli(book, env, "rollback", "--yes", "--reason", "r", "--observe", "0")
        wait_for(lambda: kinds(book)[-1] == "rollback.intent", what="the intent")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(5) == -signal.SIGKILL
        proc.communicate()
        fake.slow_seconds = 0

        status, told = status_json(book, env)
        assert not any(r.method == "PATCH" for r in fake.requests)

    assert "reconciled: rollback to 0 % by tester was interrupted and did not take effect" in told
    assert "the flag reads 10 %, not 0 %" in told
    failed = journal(book)[-1]
    assert failed["kind"] == "rollback.failed" and failed["reconciled"] is True
    assert status["stage"] == "canary" and status["pending"] is None and status["drift"] is None


# -- two consoles at once ----------------------------------------------------------------


def test_a_second_advance_is_refused_and_a_rollback_preempts_the_first(tmp_path):
    book = write_runbook(tmp_path)
    # The first advance's build would take two minutes: the rollback must not wait for it.
    with fake_vercel(build_seconds=120) as fake:
        env = environ(fake)
        first = start_cli(book, env, "advance", "--confirm", "10")
        wait_for(lambda: any(r.method == "POST" for r in fake.requests), what="the redeploy")

        second = cli(book, env, "advance", "--confirm", "10")
        fake.build_seconds = 0.2  # the rollback's own redeploy builds quickly
        started = time.monotonic()
        rollback = cli(book, env, "rollback", "--yes", "--reason", "pager", "--observe", "0")
        took = time.monotonic() - started
        out, _ = first.communicate(timeout=30)
        live = fake.live_value(PROJECT, KEY)

    assert second.code == 1
    assert "advance refused" in second.stderr
    assert f"(pid {first.pid}) is running 'advance to 10 %'" in second.stderr
    assert rollback.code == 0, rollback.output
    assert "this rollback preempts it" in rollback.stdout
    assert "rollback to 0 % verified" in rollback.stdout
    assert took < 60  # not the advance's two-minute build
    assert first.returncode != 0 and "superseded by the rollback by tester" in out
    events = journal(book)
    assert [e["kind"] for e in events][:2] == ["advance.intent", "rollback.intent"]
    assert sorted(e["kind"] for e in events[2:]) == ["advance.failed", "rollback.done"]
    superseded = next(e for e in events if e["kind"] == "advance.failed")
    assert superseded["superseded_by"] == events[1]["action"]
    assert events[1]["supersedes"] == events[0]["action"]
    assert live == "0"


# -- drift, and rollback acts on what the flag reads ------------------------------------


def test_rollback_takes_a_hand_set_flag_to_zero_and_status_shows_the_drift(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        set_by_hand(fake, 50)

        drifted, _ = status_json(book, env)
        text = cli(book, env, "status")
        ran = cli(book, env, "rollback", "--yes", "--reason", "x", "--observe", "0")
        live = fake.live_value(PROJECT, KEY)
        settled, _ = status_json(book, env)

    assert drifted["percent"]["set"] == 0 and drifted["percent"]["read"] == 50
    assert "reads 50 %" in drifted["drift"] and "off runs at 0 %" in drifted["drift"]
    assert "DRIFT" in text.stdout
    assert ran.code == 0, ran.output
    assert "rollback: 0 % (journal) → 0 %" in ran.stdout  # the journal believed 0 …
    assert "✓ rollback verified" in ran.stdout  # … and it still went to the flag
    done = journal(book)[-1]
    assert done["kind"] == "rollback.done" and done["from_percent"] == 50  # what traffic was at
    assert live == "0"
    assert settled["drift"] is None and settled["percent"]["read"] == 0


def test_status_during_another_process_move_says_moving_not_drift(tmp_path):
    # Once, `status` said DRIFT beside MOVING while another shell's advance was building:
    # the variable already read 10 % and production still served 0 %. A move in flight
    # changes the flag on purpose (#21.1).
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=120) as fake:
        env = environ(fake)
        mover = start_cli(book, env, "advance", "--confirm", "10")
        try:
            wait_for(lambda: any(r.method == "POST" for r in fake.requests), what="the redeploy")
            during, _ = status_json(book, env)
            plain = cli(book, env, "status")
        finally:
            mover.send_signal(signal.SIGTERM)
            mover.communicate(timeout=60)
    assert during["pending"] is not None and during["pending"]["move"] == "advance"
    assert during["drift"] is None, during["drift"]
    assert "DRIFT" not in plain.stdout and "MOVING" in plain.stdout, plain.stdout


def test_status_shows_drift_when_the_stored_value_is_not_what_traffic_gets(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        set_by_hand(fake, 50)
        patch_by_hand(fake, 0)  # back to 0 in the dashboard, but never redeployed
        hidden, _ = status_json(book, env)
        patch_by_hand(fake, 30)
        both, _ = status_json(book, env)
        live = fake.live_value(PROJECT, KEY)

    assert live == "50"  # what traffic gets
    assert hidden["percent"]["read"] == 0 and hidden["percent"]["live"] is False
    assert "not live" in hidden["drift"] and "off" in hidden["drift"]
    assert "reads 30 %" in both["drift"] and "not live either" in both["drift"]


def test_an_advance_whose_redeploy_ends_in_error_fails_says_so_and_stays(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel(build_seconds=0.2) as fake:
        env = environ(fake)
        fake.next_deployment_fails = True
        ran = cli(book, env, "advance", "--confirm", "10")
        status, _ = status_json(book, env)
        listed = cli(book, env, "journal")

    assert ran.code == 2
    assert "ended ERROR" in ran.stdout and "advance to 10 % failed" in ran.stdout
    assert kinds(book) == ["advance.intent", "advance.failed"]
    assert "ended ERROR" in journal(book)[-1]["error"]
    assert "advance.failed" in listed.stdout and "ended ERROR" in listed.stdout
    assert status["stage"] == "off"
    assert status["percent"]["read"] == 10 and status["percent"]["live"] is False
    assert status["drift"] is not None


# -- guards through the CLI --------------------------------------------------------------

GATED = """
[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "0s"

  [[stages.gates]]
  id = "{gate}"
  query = "{query}"
  column = "ok"
  op = "=="
  value = 1

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"

  [[stages.steps]]
  id = "no_complaints"
  text = "No complaints"

[[stages]]
id = "half"
title = "Half"
percent = 50
hold = "0s"
"""


async def test_the_cli_refuses_advance_with_the_reason_and_never_skips(tmp_path, soulprint_dsn):
    book = write_runbook(tmp_path, GATED.format(gate="undecided", query="unknown"))
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        waiting = await asyncio.to_thread(cli, book, env, "advance", "--confirm", "10")
        mistyped = await asyncio.to_thread(cli, book, env, "advance", "--confirm", "50")
        skipping = await asyncio.to_thread(
            cli, book, env, "advance", "--to", "half", "--confirm", "50"
        )
        sent = [r.method for r in fake.requests]

    assert waiting.code == 1 and "gate undecided is WAIT" in waiting.stderr
    assert mistyped.code == 1 and "advance refused" in mistyped.stderr
    assert skipping.code == 1 and "not half" in skipping.stderr
    assert "PATCH" not in sent and "POST" not in sent
    assert kinds(book) == []


async def test_the_cli_confirm_must_match_and_rollback_ignores_gates(tmp_path, soulprint_dsn):
    book = write_runbook(tmp_path, GATED.format(gate="fine", query="ok"))
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        mistyped = await asyncio.to_thread(cli, book, env, "advance", "--confirm", "50")
        await advance_fast(book, fake, soulprint_dsn)
        # In canary now, with its step unsigned; and the gate of the stage before fails.
        (tmp_path / "queries" / "ok.sql").write_text("SELECT 0 AS ok;\n")
        back = await asyncio.to_thread(
            cli, book, env, "rollback", "--yes", "--reason", "x", "--observe", "0"
        )

    assert mistyped.code == 1
    assert "you typed 50 but Canary runs at 10 %; type 10 to confirm" in mistyped.stderr
    assert back.code == 0, back.output
    assert kinds(book)[-2:] == ["rollback.intent", "rollback.done"]


def test_rollback_refuses_to_go_forward(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        ran = cli(book, env, "rollback", "--to", "half", "--yes", "--reason", "x")
        sent = fake.requests
    assert ran.code == 1
    assert "rollback goes back" in ran.stderr and "advance" in ran.stderr
    assert sent == [] and kinds(book) == []


# -- secrets never leave their variable --------------------------------------------------

PASSWORD = "pw-S3cret@Dsn-94c1"
WRONG_TOKEN = "vcp_Wr0ng-token-also-secret-5e21"


def secrets_in(text: str) -> list[str]:
    needles = [TOKEN, WRONG_TOKEN, PASSWORD, quote(PASSWORD, safe=""), "S3cret", "T0ken", "Wr0ng"]
    return [n for n in needles if n in text]


async def role_dsn(soulprint_dsn: str) -> str:
    """The test database, reached as a role with a password (trust auth ignores it; it
    must still never be shown)."""
    conn = await asyncpg.connect(soulprint_dsn)
    try:
        await conn.execute(
            "DO $$ BEGIN CREATE ROLE cutover_ro LOGIN PASSWORD 'irrelevant'; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        await conn.execute("GRANT SELECT ON user_profiles TO cutover_ro")
    finally:
        await conn.close()
    parts = urlsplit(soulprint_dsn)
    netloc = f"cutover_ro:{quote(PASSWORD, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def with_host(dsn: str, host: str) -> str:
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}", query=""))


async def test_the_token_and_dsn_password_appear_in_no_output_journal_or_error(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, GATED.format(gate="fine", query="ok"), observed=True)
    dsn = await role_dsn(soulprint_dsn)
    assert PASSWORD in urlsplit(dsn).password.replace("%40", "@")
    with fake_vercel() as fake:
        good = environ(fake, dsn=dsn)
        no_host = environ(fake, dsn=with_host(dsn, "db.nonexistent.invalid:5432"))
        bad_port = environ(fake, dsn=with_host(dsn, "127.0.0.1:notaport"))
        bad_token = environ(fake, dsn=dsn, token=WRONG_TOKEN)
        plan = {
            "validate": (good, ["validate"]),
            "check": (good, ["check"]),
            "check json": (good, ["check", "--json"]),
            "status": (good, ["status"]),
            "status json": (good, ["status", "--json"]),
            "advance": (good, ["advance", "--confirm", "10"]),
            "signoff": (good, ["signoff", "no_complaints", "--note", "quiet"]),
            "journal": (good, ["journal"]),
            "journal json": (good, ["journal", "--json"]),
            "journal verify": (good, ["journal", "--verify"]),
            "no host validate": (no_host, ["validate"]),
            "no host check": (no_host, ["check"]),
            "no host status": (no_host, ["status"]),
            "no host status json": (no_host, ["status", "--json"]),
            "bad port status": (bad_port, ["status"]),
            "bad port check": (bad_port, ["check", "--json"]),
            "bad token status": (bad_token, ["status"]),
            "bad token advance": (bad_token, ["advance", "--confirm", "50"]),
            "no host rollback": (no_host, ["rollback", "--yes", "--reason", "r", "--observe", "1"]),
            "after": (good, ["status", "--json"]),
        }
        # Read-only commands run side by side; the ones that move traffic one at a time.
        steps = [
            ["validate", "check", "check json", "status", "status json"],
            ["advance"],
            ["signoff"],
            ["journal", "journal json", "journal verify", "no host validate", "no host check"],
            ["no host status", "no host status json", "bad port status", "bad port check"],
            ["bad token status"],
            ["bad token advance"],
            ["no host rollback"],
            ["after"],
        ]
        assert sorted(x for labels in steps for x in labels) == sorted(plan)
        by = {}
        for labels in steps:
            done = await asyncio.gather(
                *(asyncio.to_thread(cli, book, plan[x][0], *plan[x][1]) for x in labels)
            )
            by.update(zip(labels, done, strict=True))

    leaks = {label: secrets_in(ran.output) for label, ran in by.items() if secrets_in(ran.output)}
    assert leaks == {}
    # The commands really ran, and the failures really failed, so the grep means something.
    assert by["advance"].code == 0, by["advance"].output
    assert by["signoff"].code == 0, by["signoff"].output
    assert by["no host validate"].code == 2
    assert "Name or service not known" in by["no host validate"].stderr
    assert "Name or service not known" in by["no host status"].stdout
    assert by["bad port status"].code == 2
    assert "unauthorized" in by["bad token status"].stdout
    assert by["bad token advance"].code == 2 and "unauthorized" in by["bad token advance"].stderr
    assert "cannot watch traffic" in by["no host rollback"].stderr
    assert by["no host rollback"].code == 0
    # the advance with a bad token could not read the flag: refused before any intent
    assert kinds(book)[-3:] == ["signoff", "rollback.intent", "rollback.done"]
    for path in tmp_path.iterdir():
        if path.is_file():
            assert secrets_in(path.read_text(errors="replace")) == [], path
    assert journal(book)  # the journal exists and was grepped


async def test_secrets_stay_out_of_exception_messages(tmp_path):
    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        flag = VercelFlag(project=PROJECT, key=KEY, token=WRONG_TOKEN, base_url=fake.url)
        try:
            with pytest.raises(FlagError) as rejected:
                await flag.read()
        finally:
            await flag.aclose()
    assert "401" in str(rejected.value) and secrets_in(str(rejected.value)) == []
    unreachable = "http://127.0.0.1:1"
    flag = VercelFlag(project=PROJECT, key=KEY, token=TOKEN, base_url=unreachable, max_attempts=1)
    try:
        with pytest.raises(FlagError) as down:
            await flag.set(10)
    finally:
        await flag.aclose()
    assert "cannot connect" in str(down.value) and secrets_in(str(down.value)) == []

    dsn = f"postgresql://cutover_ro:{quote(PASSWORD, safe='')}@db.nonexistent.invalid/x"
    session = Session(runbook.load(book), {"CUTOVER_DATABASE_URL": dsn, "VERCEL_TOKEN": TOKEN})
    runner = session.runner()
    with pytest.raises(db.DatabaseUnavailable) as gone:
        await runner.connect()
    assert secrets_in(str(gone.value)) == []
    result = await runner.run(session.runbook.queries["ok"])
    assert result.error and secrets_in(result.error) == []


def test_a_session_s_repr_shows_no_secret(tmp_path):
    book = write_runbook(tmp_path)
    env = {"VERCEL_TOKEN": TOKEN, "CUTOVER_DATABASE_URL": f"postgresql://u:{PASSWORD}@h/x"}
    assert secrets_in(repr(Session(runbook.load(book), env))) == []


# -- the observed share after a rollback --------------------------------------------------


class Traffic:
    """Imports arriving every 50 ms, each routed by what the live deployment carries (as
    the app does), or, with `ignore_flag`, all of them to v2 whatever the flag says (a
    deployment that did not take the change)."""

    def __init__(self, dsn: str, fake, *, ignore_flag: bool = False):
        self.dsn, self.fake, self.ignore_flag = dsn, fake, ignore_flag
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            i = 0
            while True:
                # Routed now: the row's start time is the moment the routing was decided.
                started = datetime.now(UTC)
                live = int(self.fake.live_value(PROJECT, KEY) or 0)
                v2 = True if self.ignore_flag else i % 100 < live
                await conn.execute(
                    "INSERT INTO user_profiles (full_pass_status, full_pass_started_at, "
                    "pipeline_version) VALUES ('processing', $1, $2)",
                    started,
                    "v2" if v2 else "v1",
                )
                i += 1
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def __aenter__(self) -> Traffic:
        self.task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def acli(book: Path, env: dict, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *cutover_argv(book, *args),
        env=env,
        cwd=book.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def v2_since(dsn: str, since: datetime) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE pipeline_version = 'v2') AS v2 "
            "FROM user_profiles WHERE full_pass_started_at >= $1",
            since,
        )
        return row["n"], row["v2"]
    finally:
        await conn.close()


async def test_a_rollback_is_reported_effective_once_new_imports_show_no_v2(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, observed=True)
    with fake_vercel(build_seconds=0.5) as fake:
        env = environ(fake, dsn=soulprint_dsn)
        await advance_fast(book, fake, soulprint_dsn)
        async with Traffic(soulprint_dsn, fake):
            await asyncio.sleep(0.6)  # some v2 traffic before the rollback
            code, out, err = await acli(
                book, env, "rollback", "--yes", "--reason", "v2 failing", "--observe", "20"
            )

    assert code == 0, out + err
    assert "✓ rollback effective: 0 % (v2_share.v2_pct; " in out
    assert "since it took effect" in out
    assert "from command to no new traffic on the new path" in out
    done = datetime.fromisoformat(journal(book)[-1]["ts"])
    n_after, v2_after = await v2_since(soulprint_dsn, done)
    assert n_after > 0 and v2_after == 0
    # The last 15 minutes as a whole still show v2: only imports after the rollback count.
    _, v2_all = await v2_since(soulprint_dsn, datetime(2000, 1, 1, tzinfo=UTC))
    assert v2_all > 0


async def test_a_rollback_is_not_reported_effective_while_traffic_still_shows_v2(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, observed=True)
    with fake_vercel(build_seconds=0.5) as fake:
        env = environ(fake, dsn=soulprint_dsn)
        await advance_fast(book, fake, soulprint_dsn)
        async with Traffic(soulprint_dsn, fake, ignore_flag=True):
            # Long enough for a second look (it polls every 2 s): the first may come before
            # any import started after the rollback, and "no traffic yet" proves nothing.
            code, out, err = await acli(
                book, env, "rollback", "--yes", "--reason", "x", "--observe", "3"
            )

    assert "✓ rollback verified" in out  # the flag did change …
    assert "effective" not in out  # … but traffic did not follow
    assert code == 3
    assert "traffic does not show it yet" in err and "v2_share.v2_pct" in err
