"""The demo's clock (#21.10): `cutover demo`'s data ages as fast as its holds run (an hour a
second), so the shipped queries' 24 h and one-hour windows pass in seconds with their SQL
untouched, a world broken on purpose recovers within half a minute, and a real instant a
query takes (the latest rollback's) means the same on that clock. Real parts: the demo
world's embedded Postgres, its loopback Vercel and fake Render."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cutover.demo import clock as clock_mod
from cutover.demo import runbook_copy
from cutover.demo.runbook_copy import demo_runbook, write_demo_runbook
from cutover.demo.traffic import KNOWN_ERRORS, InFlight, Knobs, Traffic
from cutover.demo.world import CONTROL_URL_ENV, DEMO_RATE, World
from cutover.runbook.loader import load
from test_demo_world import RUNBOOK, fetch, patch_percent, redeploy, scratch, vercel_client

__all__ = ["scratch"]  # the fixture, used by name
SCALE = clock_mod.DEFAULT_SCALE


@pytest.fixture
def world(scratch: Path) -> Iterator[World]:
    with World(
        scratch / "demo", runbook=RUNBOOK, rate=DEMO_RATE, build_seconds=0.3, clock=SCALE, seed=5
    ) as w:
        yield w


async def until(predicate, timeout: float, every: float = 0.5):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(every)


def test_the_copy_reads_a_real_instant_on_the_clock_and_refreshes_often(tmp_path: Path):
    demo_dir = tmp_path / "demo"
    copy = load(write_demo_runbook(RUNBOOK, demo_dir, clock=SCALE))
    original = load(RUNBOOK)
    for qid, query in copy.queries.items():
        if query.kind == "derived":
            continue
        assert query.refresh_s <= 15, qid
        if query.kind == "http":
            continue
        was = original.queries[qid]
        # The statement is the shipped one, its real instant (if any) read on the clock;
        # a file with none is the shipped file itself.
        assert query.sql == was.sql.replace(clock_mod.PARAM, clock_mod.WORLD_PARAM), qid
        if clock_mod.PARAM in was.file.read_text(encoding="utf-8"):
            assert query.file == (demo_dir / "queries" / was.file.name).resolve(), qid
        else:
            assert query.file == was.file, qid
    assert "world_time" in copy.queries["v2_since_rollback"].sql
    assert "world_time" in copy.queries["v2_rows"].sql  # the observed share after a rollback


async def test_a_day_of_imports_is_in_the_24_h_window_at_start(world: World) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    book = load(world.environ["CUTOVER_RUNBOOK"])
    (row,) = await fetch(dsn, book.queries["success_rate"].sql)
    # 100 an hour of the world's time: about 2,400 judged in the last 24 h, not ~50.
    assert 1800 <= row["total_imports"] <= 3000, dict(row)
    assert row["success_rate_pct"] >= 98
    # The past spans the 8 days the queries look back over, read through the view.
    (span,) = await fetch(
        dsn, "SELECT now() - min(full_pass_started_at) AS oldest FROM user_profiles"
    )
    assert timedelta(days=7) < span["oldest"] <= timedelta(days=8, hours=1)


async def test_broken_v2_imports_leave_the_24_h_window_within_half_a_minute(
    world: World,
) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    book = load(world.environ["CUTOVER_RUNBOOK"])
    v2_row = book.queries["v1_vs_v2"].sql

    async def v2() -> dict:
        rows = await fetch(dsn, v2_row)
        return dict(next(r for r in rows if r["pipeline_version"] == "v2"))

    async with vercel_client(world) as api:
        await patch_percent(api, "100")
        await redeploy(api)
    async with httpx.AsyncClient(base_url=world.environ[CONTROL_URL_ENV]) as control:
        (await control.post("/knobs", json={"v2_failure_rate": 1})).raise_for_status()
        broken = await until(lambda: _failed_at_least(v2, 200), 20)
        assert broken, await v2()
        (await control.post("/knobs", json={"v2_failure_rate": 0})).raise_for_status()
    # On real time they would weigh on v2's success rate for 24 hours.
    mended = await until(lambda: _failed_at_most(v2, 0), 45)
    latest = await v2()
    assert mended, latest
    assert latest["total_imports"] >= 500 and latest["success_rate_pct"] == 100


async def _failed_at_least(v2, n: int) -> bool:
    return (await v2())["failed_imports"] >= n


async def _failed_at_most(v2, n: int) -> bool:
    return (await v2())["failed_imports"] <= n


async def test_since_a_real_instant_counts_exactly_the_imports_started_after_it(
    world: World,
) -> None:
    dsn = world.environ["CUTOVER_DATABASE_URL"]
    book = load(world.environ["CUTOVER_RUNBOOK"])
    async with vercel_client(world) as api:
        await patch_percent(api, "100")
        await redeploy(api)
    await asyncio.sleep(0.5)  # imports routed by the 0 % build finish (0.4 s at most)
    since = datetime.now(UTC)
    await asyncio.sleep(3)
    (row,) = await fetch(dsn, book.queries["v2_since_rollback"].sql, since)
    # About 100 a second, every one to v2: the imports of those 3 s, not of the last
    # 3/3600 s (which the shipped statement, comparing a real instant, would count).
    assert 200 <= row["v2_imports"] <= 400, dict(row)
    (raw,) = await fetch(dsn, load(RUNBOOK).queries["v2_since_rollback"].sql, since)
    assert raw["v2_imports"] < 20
    # The observed share after a rollback reads the same way: traffic since it, at once.
    (rows,) = await fetch(dsn, book.queries["v2_rows"].sql, since)
    assert rows["v2_imports"] >= 200 and rows["v1_imports"] == 0


async def test_the_last_hours_v1_calls_in_rendered_logs_age_on_the_clock(world: World) -> None:
    assert world.rlm is not None and world.render is not None
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{world.rlm.url}/process-full", json={"user_id": "t", "storage_path": "t.json"}
        )
        assert answer.status_code == 200

        async def calls() -> int:
            got = await client.get(
                f"{world.render.url}/v1/logs",
                params={
                    "ownerId": world.render.owner_id,
                    "resource": world.render.service_id,
                    "limit": 100,
                },
                headers={"Authorization": f"Bearer {world.render.api_key}"},
            )
            return len(got.raise_for_status().json()["logs"])

        assert await calls() == 1
        # An hour of the world's time later (a second), it has left "the last hour".
        assert await until(lambda: _none(calls), 5, every=0.2)


async def _none(count) -> bool:
    return await count() == 0


def test_the_clock_is_fixed_for_the_worlds_life(world: World) -> None:
    assert world.traffic is not None
    assert world.traffic.knobs.time_scale == SCALE
    with pytest.raises(ValueError, match="time_scale is the demo's clock"):
        world.traffic.set_knobs(time_scale=60)


def test_live_failures_take_every_known_message_in_turn() -> None:
    """A stage's 24 h window holds a couple of dozen failures on the clock: each known
    pattern must be in every stage's exit, or it reads as "new" at the next stage."""
    traffic = Traffic("postgresql://never-connected", lambda: 0.0, seed=3)
    now = datetime.now(UTC)
    while sum(u[1] == "failed" for u in traffic._updates) < 12:
        traffic._finish(InFlight(uuid.uuid4(), "v1", timedelta(minutes=5)), now, Knobs())
    failed = [u[4] for u in traffic._updates if u[1] == "failed"]
    templates = [next(t for t in KNOWN_ERRORS if _same(t, e)) for e in failed]
    for start in range(len(templates) - len(KNOWN_ERRORS) + 1):
        assert set(templates[start : start + len(KNOWN_ERRORS)]) == set(KNOWN_ERRORS)


def _same(template: str, message: str) -> bool:
    head, _, tail = template.partition("{n}")
    return message.startswith(head) and message.endswith(tail)


def test_every_spelling_of_a_real_instant_is_read_on_the_clock_and_nothing_else() -> None:
    on = runbook_copy.on_the_clock
    world = "demo_clock.world_time"
    assert on("t >= $1") == f"t >= {world}($1::timestamptz)"
    assert on("t >= $1 :: TimestampTZ") == f"t >= {world}($1::timestamptz)"
    assert on("t >= $1::timestamp with time zone") == f"t >= {world}($1::timestamptz)"
    # Another cast applies to the instant read on the clock; $12 is not $1 followed by 2.
    assert on("d >= $1::date") == f"d >= {world}($1::timestamptz)::date"
    assert on("t >= $12") == f"t >= {world}($12::timestamptz)"
    # Comments, strings, dollar-quoted text and names with a $ are not parameters.
    untouched = "SELECT '$1', $q$ $1 $q$, a$1 -- $1::timestamptz\n/* $1 */"
    assert on(untouched) == untouched
    assert not runbook_copy.takes_an_instant(untouched)


def test_every_value_cutover_binds_to_a_query_is_an_instant_the_clock_reads() -> None:
    """The demo reads every parameter on its clock: a new kind of value bound to $N (not a
    time) must be taught to it first, or its copy would wrap it in world_time()."""
    from cutover.runbook.keys import QUERY_PARAMS

    assert set(QUERY_PARAMS) == set(runbook_copy.INSTANT_PARAMS)


def test_the_copy_finds_the_instant_however_the_file_spells_it(tmp_path: Path) -> None:
    source = tmp_path / "book" / "runbook.toml"
    for folder, sql in (
        ("a", "SELECT 1 FROM t WHERE s >= $1 -- since the rollback\n"),
        ("b", "SELECT 2 FROM t WHERE s >= coalesce($1 :: TIMESTAMPTZ, now())\n"),
        ("c", "-- $1 is not taken here\nSELECT 3 FROM t\n"),
    ):
        (source.parent / folder).mkdir(parents=True)
        (source.parent / folder / "q.sql").write_text(sql, encoding="utf-8")
    data = {
        "queries": {name: {"file": f"{name}/q.sql", "params": ["rolled_back_at"]} for name in "abc"}
    }
    copy = demo_runbook(data, source, tmp_path / "demo", clock=SCALE)
    files = {name: Path(q["file"]) for name, q in copy["queries"].items()}
    # Two originals of one name: a copy each, each with its own statement.
    assert files["a"] != files["b"] and files["a"].parent == tmp_path / "demo" / "queries"
    assert "SELECT 1" in files["a"].read_text() and "SELECT 2" in files["b"].read_text()
    assert "s >= demo_clock.world_time($1::timestamptz) --" in files["a"].read_text()
    assert "coalesce(demo_clock.world_time($1::timestamptz), now())" in files["b"].read_text()
    # Its $1 only in a comment: the original itself, nothing to read on the clock.
    assert files["c"] == (source.parent / "c" / "q.sql").resolve()
