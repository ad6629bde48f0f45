"""After a rollback: the runbook's `[rollback]` steps and gates, shown by status (and check)
from any rollback until the next advance, which needs them signed and passing. Through the
CLI, on a real Postgres and the loopback Vercel."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from cutover.record.events import Kind
from cutover.record.journal import Event
from cutover.record.state import replay
from cutover.runbook import loader as runbook
from cutover.runbook.problems import ProblemsFound
from moves_world import cli, environ, fake_vercel, journal, write_runbook

REPO = Path(__file__).resolve().parents[1]

STAGES = """
[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "0s"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"

[queries.v2_since_rollback]
file = "queries/08_after_rollback.sql"
statement = 1
params = ["rolled_back_at"]

[queries.in_flight_v2]
file = "queries/08_after_rollback.sql"
statement = 2

[rollback]
title = "After a rollback"

  [[rollback.steps]]
  id = "errors_read"
  text = "Error patterns read"

  [[rollback.steps]]
  id = "what_was_fixed"
  text = "What was fixed"
  note_required = true

  [[rollback.gates]]
  id = "no_new_v2"
  query = "v2_since_rollback"
  column = "v2_imports"
  op = "=="
  value = 0

  [[rollback.gates]]
  id = "in_flight_drained"
  query = "in_flight_v2"
  column = "in_flight_imports"
  op = "=="
  value = 0
"""


def book_in(folder: Path) -> Path:
    path = write_runbook(folder, STAGES)
    shutil.copy(REPO / "queries" / "08_after_rollback.sql", folder / "queries")
    return path


async def run(book, env, *args):
    return await asyncio.to_thread(cli, book, env, *args)


async def status_of(book, env) -> dict:
    return json.loads((await run(book, env, "status", "--json")).stdout)


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_after_a_rollback_the_next_advance_needs_the_checklist_signed_and_passing(
    tmp_path, soulprint_dsn
):
    book = book_in(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        assert (await status_of(book, env))["rollback_checklist"] is None
        assert (await run(book, env, "advance", "--confirm", "10")).code == 0
        back = await run(book, env, "rollback", "--yes", "--reason", "v2 fails", "--observe", "0")
        assert back.code == 0, back.output

        # shown from the rollback on, nothing signed yet
        shown = (await status_of(book, env))["rollback_checklist"]
        assert shown["from_stage"] == "canary"
        assert [(s["step"], s["signed"]) for s in shown["steps"]] == [
            ("errors_read", False),
            ("what_was_fixed", False),
        ]
        text = (await run(book, env, "status")).stdout
        assert "ROLLBACK  After a rollback (rolled back from canary at" in text
        assert "  ☐ what_was_fixed: What was fixed" in text

        # a v2 import after the rollback: the gate fails, and the steps are unsigned
        await execute(
            soulprint_dsn,
            "INSERT INTO user_profiles (full_pass_status, full_pass_started_at,"
            " pipeline_version) VALUES ('processing', now(), 'v2')",
        )
        refused = await run(book, env, "advance", "--confirm", "10")
        assert refused.code == 1
        assert "2 rollback sign-offs left (errors_read, what_was_fixed)" in refused.stderr
        assert "rollback gate no_new_v2 is FAIL: 1 ≠ 0" in refused.stderr
        assert "rollback gate in_flight_drained is FAIL: 1 ≠ 0" in refused.stderr
        check = await run(book, env, "check", "--json")
        report = json.loads(check.stdout)
        assert [(g["id"], g["verdict"]) for g in report["rollback_gates"]] == [
            ("no_new_v2", "fail"),
            ("in_flight_drained", "fail"),
        ]
        assert (check.code, report["verdict"]) == (1, "fail")

        # "what was fixed" needs its note
        bare = await run(book, env, "signoff", "what_was_fixed")
        assert bare.code == 1 and "what_was_fixed needs a note (What was fixed)" in bare.stderr
        assert (await run(book, env, "signoff", "errors_read", "--note", "chunker")).code == 0
        signed = await run(
            book, env, "signoff", "what_was_fixed", "--note", "chunker KeyError fixed in a1b2c3"
        )
        assert signed.code == 0, signed.output
        still = await run(book, env, "advance", "--confirm", "10")
        assert still.code == 1 and "rollback sign-off" not in still.stderr
        assert "rollback gate no_new_v2 is FAIL" in still.stderr

        # the v2 job finishes and it turns out to have started before the rollback
        await execute(
            soulprint_dsn,
            "UPDATE user_profiles SET full_pass_status = 'complete',"
            " full_pass_started_at = now() - interval '1 hour', full_pass_completed_at = now()",
        )
        moved = await run(book, env, "advance", "--confirm", "10")
        assert moved.code == 0, moved.output
        after = await status_of(book, env)

    assert after["stage"] == "canary"
    assert after["rollback_checklist"] is None  # done: closed by the advance it allowed
    fixed = next(e for e in journal(book) if e.get("step") == "what_was_fixed")
    assert (fixed["checklist"], fixed["note"]) == ("rollback", "chunker KeyError fixed in a1b2c3")


async def test_a_rollback_gate_that_waits_can_be_overridden_with_a_note(tmp_path, soulprint_dsn):
    book = book_in(tmp_path)
    # the in-flight query cannot be judged: the gate waits
    sql = (REPO / "queries" / "08_after_rollback.sql").read_text()
    counted = sql.index("SELECT count(*)", sql.index("-- In-flight v2 imports"))
    waits = sql[:counted] + sql[counted:].replace("count(*)", "NULL::int", 1)
    (tmp_path / "queries" / "08_after_rollback.sql").write_text(waits)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        await run(book, env, "advance", "--confirm", "10")
        await run(book, env, "rollback", "--yes", "--reason", "x", "--observe", "0")
        for step in ("errors_read", "what_was_fixed"):
            await run(book, env, "signoff", step, "--note", "done")
        refused = await run(book, env, "advance", "--confirm", "10")
        moved = await run(
            book,
            env,
            *("advance", "--confirm", "10", "--override", "in_flight_drained"),
            *("--note", "checked the RLM's jobs by hand"),
        )
    assert "rollback gate in_flight_drained is WAIT" in refused.stderr
    assert moved.code == 0, moved.output
    intent = [e for e in journal(book) if e["kind"] == "advance.intent"][-1]
    assert intent["overrides"][0]["gate"] == "in_flight_drained"


async def test_a_checklist_step_cannot_be_signed_before_any_rollback(tmp_path, soulprint_dsn):
    book = book_in(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(book, env, "signoff", "errors_read", "--note", "x")
    assert done.code == 1
    assert "errors_read is a step of the rollback checklist, which opens after a rollback" in (
        done.stderr
    )


async def test_the_rollback_time_is_bound_to_the_query_that_asks_for_it(tmp_path, soulprint_dsn):
    book = book_in(tmp_path)
    await execute(
        soulprint_dsn,
        "INSERT INTO user_profiles (full_pass_status, full_pass_started_at, pipeline_version)"
        " VALUES ('complete', now() - interval '10 minutes', 'v2')",
    )
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        await run(book, env, "advance", "--confirm", "10")
        await run(book, env, "rollback", "--yes", "--reason", "x", "--observe", "0")
        report = json.loads((await run(book, env, "check", "--json")).stdout)
    # before the rollback: not counted (the default window, 15 minutes, would count it)
    assert report["rollback_gates"][0] == {
        "id": "no_new_v2",
        "query": "v2_since_rollback",
        "verdict": "pass",
        "value": 0,
        "interval": None,
        "op": "==",
        "threshold": 0,
        "reason": "0 = 0",
        "more": None,
        "against": None,
        "baseline": None,
        "counts": True,
    }


# ---------------------------------------------------------------- replay, pure


def _event(seq: int, kind: Kind, at: datetime, **fields) -> Event:
    return Event(seq, at, "ops", "h", kind.value, fields, prev="", hash="")


def test_each_rollback_opens_a_fresh_checklist_and_an_advance_closes_it(tmp_path):
    book = runbook.load(book_in(tmp_path))
    t = datetime(2026, 11, 20, tzinfo=UTC)
    step = timedelta(minutes=1)
    move = {"from_stage": "off", "to_stage": "canary", "to_percent": 10}
    back = {"from_stage": "canary", "to_stage": "off", "to_percent": 0}
    events = [
        _event(1, Kind.ADVANCE_INTENT, t, action="a1", **move),
        _event(2, Kind.ADVANCE_DONE, t + step, action="a1"),
        _event(3, Kind.ROLLBACK_INTENT, t + 2 * step, action="r1", **back),
        _event(4, Kind.ROLLBACK_DONE, t + 3 * step, action="r1"),
    ]
    state = replay(book, events)
    assert state.after_rollback is not None
    assert (state.after_rollback.at, state.after_rollback.from_stage) == (t + 3 * step, "canary")
    assert state.rolled_back_at == t + 3 * step
    signed = _event(
        5, Kind.SIGNOFF, t + 4 * step, stage="off", step="errors_read", visit=3,
        checklist="rollback", note="read",
    )  # fmt: skip
    state = replay(book, [signed], since=state)
    assert set(state.after_rollback.signoffs) == {"errors_read"}
    assert state.signoffs == {}  # not a sign-off of the stage
    again = [
        _event(6, Kind.ROLLBACK_INTENT, t + 5 * step, action="r2", **back),
        _event(7, Kind.ROLLBACK_DONE, t + 6 * step, action="r2"),
    ]
    state = replay(book, again, since=state)
    assert state.after_rollback.signoffs == {}  # a new rollback: a new checklist
    closed = replay(
        book,
        [
            _event(8, Kind.ADVANCE_INTENT, t + 7 * step, action="a2", **move),
            _event(9, Kind.ADVANCE_DONE, t + 8 * step, action="a2"),
        ],
        since=state,
    )
    assert closed.after_rollback is None
    assert closed.rolled_back_at == t + 6 * step  # still known, for the queries that ask


def test_a_failed_rollback_opens_no_checklist(tmp_path):
    book = runbook.load(book_in(tmp_path))
    t = datetime(2026, 11, 20, tzinfo=UTC)
    events = [
        _event(1, Kind.ROLLBACK_INTENT, t, action="r", to_stage="off", to_percent=0),
        _event(2, Kind.ROLLBACK_FAILED, t, action="r", error="unreachable"),
    ]
    assert replay(book, events).after_rollback is None


# ---------------------------------------------------------------- the runbook's [rollback]


def _problems(folder: Path, text: str) -> list[str]:
    path = write_runbook(folder, text)
    shutil.copy(REPO / "queries" / "08_after_rollback.sql", folder / "queries")
    with pytest.raises(ProblemsFound) as caught:
        runbook.load(path, shown_as="runbook.toml")
    return [str(p) for p in caught.value.problems]


def test_a_rollback_step_named_like_a_stage_step_is_refused(tmp_path):
    text = STAGES.replace(
        'hold = "0s"\n\n[[stages]]',
        'hold = "0s"\n\n  [[stages.steps]]\n  id = "errors_read"\n  text = "x"\n\n[[stages]]',
        1,
    )
    found = _problems(tmp_path, text)
    assert any(
        "rollback step id 'errors_read' is also a step of stage 'off'" in p for p in found
    ), found


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (('query = "in_flight_v2"', 'query = "in_flight"'), "unknown query 'in_flight'"),
        (("note_required = true", 'note_required = "yes"'), "note_required must be true or false"),
        (('title = "After a rollback"', 'titel = "After"'), "unknown key 'titel' in [rollback]"),
        (('params = ["rolled_back_at"]', 'params = ["rollback_time"]'),
         "params 'rollback_time' is not known; a query may take rolled_back_at"),
    ],
)  # fmt: skip
def test_a_rollback_table_said_wrong_is_named(tmp_path, change, said):
    found = _problems(tmp_path, STAGES.replace(*change))
    assert any(said in p for p in found), found
    assert all(p.startswith("runbook.toml:") for p in found)


def test_the_shipped_runbook_ships_the_originals_procedure():
    book = runbook.load(REPO / "runbook.toml")
    assert book.rollback is not None
    steps = {s.id: s for s in book.rollback.steps}
    assert steps["what_was_fixed"].note_required
    assert [g.check.query for g in book.rollback.gates] == ["v2_since_rollback", "in_flight_v2"]
    assert book.queries["v2_since_rollback"].params == ("rolled_back_at",)


# ---------------------------------------------------------------- in the demo world


@pytest.fixture
def demo(tmp_path_factory):
    """The demo world on the shipped runbook: its Postgres, fake Vercel, RLM and Render."""
    import tempfile

    from cutover.demo.traffic import Knobs
    from cutover.demo.world import World

    with tempfile.TemporaryDirectory(prefix="cutover-rollback-", ignore_cleanup_errors=True) as d:
        world = World(
            Path(d) / "demo",
            runbook=REPO / "runbook.toml",
            rate=6.0,
            build_seconds=0.3,
            knobs=Knobs(time_scale=600.0),
            seed=5,
        )
        with world:
            world.traffic.set_knobs(rate=1200.0)
            yield world


async def test_in_the_demo_advance_waits_for_the_rollback_checklist(demo):
    from cutover.judge.session import Session
    from cutover.traffic import actions, machine
    from cutover.traffic.flags import open_flag
    from cutover.traffic.signoff import sign_off

    session = Session(runbook.load(demo.environ["CUTOVER_RUNBOOK"]), {**demo.environ})
    flag = open_flag(session.runbook.flag, session.environ, session.redact)
    runner = session.runner()

    async def look():
        state, _ = session.state()
        report, _ = await session.check(runner, session.runbook.stage(state.stage_id))
        now = datetime.now(UTC)
        hold = session.judge_hold(state, now, report)
        return state, report, machine.decide(session.runbook, state, now, report,
                                             await flag.read(), hold)  # fmt: skip

    try:
        for step in session.runbook.stage("prerequisites").steps:
            await sign_off(session, step.id, note="demo")
        _, report, _ = await look()
        await actions.advance(session, flag, report=report, confirm=10)
        await actions.rollback(session, flag, reason="demo drill", attempts=5)

        state, report, allowed = await look()
        assert state.stage_id == "prerequisites" and state.after_rollback is not None
        assert not allowed.advance.allowed
        assert "5 rollback sign-offs left" in allowed.advance.reason
        assert [g.id for g in report.rollback_gates] == ["no_new_v2", "in_flight_drained"]

        # v2 traffic stopped at the rollback; what was in flight finishes within seconds. A
        # step is signed plainly only once its gate says so.
        for _ in range(100):
            state, report, allowed = await look()
            if all(g.verdict.value == "pass" for g in report.rollback_gates):
                break
            await asyncio.sleep(0.2)
        for step in session.runbook.rollback.steps:
            await sign_off(session, step.id, note="drill: nothing to fix", report=report)
        for step in session.runbook.stage("prerequisites").steps:
            await sign_off(session, step.id, note="again", report=report)
        for _ in range(100):
            state, report, allowed = await look()
            if allowed.advance.allowed:
                break
            await asyncio.sleep(0.2)
        assert allowed.advance.allowed, allowed.advance.reason
        assert {g.id: g.verdict.value for g in report.rollback_gates} == {
            "no_new_v2": "pass",
            "in_flight_drained": "pass",
        }
    finally:
        await runner.aclose()
        await flag.aclose()
