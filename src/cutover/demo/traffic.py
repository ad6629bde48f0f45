"""Simulated soulprint imports: a realistic past on start, then live imports routed to v1 or
v2 by the percent of the live Vercel deployment, with knobs that make v2 misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from cutover.demo import clock as clock_mod

log = logging.getLogger(__name__)

# Messages v1 has produced for weeks; the numbers vary, the masked pattern does not, so the
# "new error pattern" gate stays quiet until v2 says something v1 never said.
KNOWN_ERRORS: tuple[str, ...] = (
    "RLM timeout after {n}s",
    "Invalid export archive: missing conversations.json",
    "Upstream rate limited (429), retry in {n} s",
    "Embedding batch {n} failed: connection reset by peer",
)
NEW_V2_ERROR = "v2 chunker: KeyError 'conversation_id' in chunk {n}"
V1_FAILURE_RATE = 0.01  # ~99 % success, the baseline every gate is measured against
STUCK_AFTER = timedelta(hours=2, minutes=1)  # the queries call an import stuck after 2 h
TICK_S = 0.25  # how often arrivals and finishes are written, as one transaction
MAX_BACKLOG = 50_000  # rows held while the database is down; beyond that the oldest go
PRUNE_EVERY_S = 5.0  # on the demo's clock: how often rows no window reads any more go

COLUMNS = (
    "user_id",
    "full_pass_status",
    "full_pass_started_at",
    "full_pass_completed_at",
    "full_pass_error",
    "pipeline_version",
)
Row = tuple[uuid.UUID, str, datetime, datetime | None, str | None, str]

_INSERT = """
INSERT INTO {table} (user_id, full_pass_status, full_pass_started_at,
                           full_pass_completed_at, full_pass_error, pipeline_version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                     $5::text[], $6::text[])
ON CONFLICT (user_id) DO NOTHING
"""
_UPDATE = """
UPDATE {table} AS p
   SET full_pass_status = u.status, full_pass_started_at = u.started_at,
       full_pass_completed_at = u.completed_at, full_pass_error = u.error
  FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[])
       AS u(user_id, status, started_at, completed_at, error)
 WHERE p.user_id = u.user_id
"""


@dataclass(frozen=True)
class Knobs:
    """What a presenter can turn while the demo runs (POST /knobs on the control server)."""

    # Imports per minute of real time, all pipelines. On the demo's clock (an hour a second)
    # 6000 a minute is 100 an hour of the world's time, 2,400 in a 24 h window: enough for
    # the runbook's statistics to decide a gate within its first evaluations.
    rate: float = 30.0
    v2_failure_rate: float = 0.005  # share of v2 imports that fail
    v2_stuck_rate: float = 0.0  # share of v2 imports that never finish
    v2_slow_rate: float = 0.0  # share of v2 imports that take 35–60 min
    # v2 failures above v1's own rate say this, a pattern v1 never had: the new-error gate
    v2_error: str = NEW_V2_ERROR
    # Simulated minutes per real minute while an import is in flight (see Traffic); with the
    # demo's clock on, the clock's scale, fixed for the world's life
    time_scale: float = 60.0

    def evolve(self, **changes: Any) -> Knobs:
        """A copy with `changes`, checked; ValueError naming the knob otherwise.

        >>> Knobs().evolve(v2_failure_rate=0.2).v2_failure_rate
        0.2
        >>> Knobs().evolve(v2_failure_rate=2)
        Traceback (most recent call last):
        ...
        ValueError: v2_failure_rate must be between 0 and 1, not 2
        """
        known = {f.name for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown knob {name!r}; knobs are {', '.join(sorted(known))}")
            if name == "v2_error":
                if not isinstance(value, str) or not value.strip():
                    raise ValueError("v2_error must be a non-empty string")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number ≥ 0, not {value!r}")
            if name.endswith("_rate") and name != "rate" and value > 1:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
            if name == "time_scale" and value < 1:
                raise ValueError(f"time_scale must be at least 1, not {value!r}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -------------------------------------------------------------------- the shape of an import


def _duration(rng: random.Random) -> timedelta:
    """Mostly 3–12 min (peaked around 6), one in eight a tail to 25 min; never 30+, so the
    slow-import trigger stays quiet until v2_slow_rate says otherwise."""
    if rng.random() < 0.875:
        minutes = 3 + 9 * rng.betavariate(1.6, 2.2)
    else:
        minutes = 12 + 13 * rng.betavariate(1.2, 3.0)
    return timedelta(minutes=minutes)


def _slow_duration(rng: random.Random) -> timedelta:
    return timedelta(minutes=35 + 25 * rng.random())


def _known_error(rng: random.Random) -> str:
    return rng.choice(KNOWN_ERRORS).format(n=rng.randint(2, 999))


def _hourly_factor(at: datetime) -> float:
    """Busier in the European/US afternoon, quieter at night; averages 1 over a day."""
    hour = at.hour + at.minute / 60
    return 1 + 0.4 * math.sin(2 * math.pi * (hour - 9) / 24)


def _new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _arrivals(start: datetime, end: datetime, per_minute: float, rng: random.Random):
    """Poisson arrivals between `start` and `end`, the rate varying hour by hour."""
    at = start
    while per_minute > 0:
        hourly = per_minute * _hourly_factor(at) * rng.uniform(0.9, 1.1)
        at += timedelta(minutes=rng.expovariate(hourly))
        if at >= end:
            return
        yield at


@dataclass
class InFlight:
    """An import that has started and not finished: it finishes (or re-stamps, when stuck)
    at `due`, a time.monotonic() value."""

    user_id: uuid.UUID
    version: str
    duration: timedelta
    stuck: bool = False
    started: datetime | None = None  # on the demo's clock: when it started, as written


def backfill(
    now: datetime, rate: float, rng: random.Random
) -> tuple[list[Row], list[tuple[Row, timedelta]]]:
    """48 h of v1 imports at `rate`/min (0 % rollout), plus a thinner week before that in
    which every known error pattern occurs, so the last 24 h holds no "new" pattern.
    Returns (finished rows, rows still processing at `now` with their durations)."""
    done: list[Row] = []
    processing: list[tuple[Row, timedelta]] = []

    def add(started: datetime, error: str | None = None) -> None:
        duration = _duration(rng)
        finished = started + duration
        user_id = _new_id(rng)
        if finished > now:
            processing.append(((user_id, "processing", started, None, None, "v1"), duration))
        elif error is not None or rng.random() < V1_FAILURE_RATE:
            done.append((user_id, "failed", started, finished, error or _known_error(rng), "v1"))
        else:
            done.append((user_id, "complete", started, finished, None, "v1"))

    week_start, recent_start = now - timedelta(days=8), now - timedelta(hours=48)
    for started in _arrivals(week_start, recent_start, max(rate / 20, 0.05), rng):
        add(started)
    for template in KNOWN_ERRORS:
        for _ in range(3):
            started = week_start + (recent_start - week_start) * rng.random()
            add(started, template.format(n=rng.randint(2, 999)))
    for started in _arrivals(recent_start, now, rate, rng):
        add(started)
    return done, processing


# -------------------------------------------------------------------------- the simulator


class Traffic:
    """Runs in its own thread and event loop, so it goes on while the console owns the main
    thread. `start()` returns once the past is written; `set_knobs()` is safe from any thread.

    Time: live imports take realistic durations (3–25 min), but waiting that long would make
    a 15-minute demo show nothing. So in-flight time is compressed by `time_scale` (60: an
    8-minute import finishes 8 s after it arrives) and, when it finishes, the row is written
    with its realistic span ending now: started_at = now − duration. Queries over 24 h and
    15 min then see v2 imports within seconds of a redeploy (they start at arrival, in
    `processing`), outcomes within seconds of a knob change (decided when an import
    finishes), and no new v2 import after a rollback: back-dating only ever moves a start
    earlier, never past a flag change. A stuck import is re-stamped as started 2 h 1 min ago
    once that much compressed time has passed, so the stuck gate and burst trigger see it.

    With `clock` (the demo's: 3600, see demo/clock.py) the whole world runs on one clock,
    not only the imports in flight: rows are written on a compressed axis and read through
    a view that ages them `clock` times as fast, so 24 h windows pass in 24 s as holds do.
    In-flight time is then compressed by `clock` too (the time_scale knob is fixed to it),
    the past is written at `rate / clock` imports per minute of the world's time (so it
    looks like the present), and nothing is back-dated: a row's times are exact.
    """

    def __init__(
        self,
        dsn: str,
        live_percent: Callable[[], float],
        knobs: Knobs | None = None,
        *,
        seed: int | None = None,
        clock: float | None = None,
    ):
        self.dsn = dsn
        self._live_percent = live_percent
        self.clock = clock
        self._knobs = knobs or Knobs()
        if clock is not None:
            self._knobs = self._knobs.evolve(time_scale=clock)
        table = f"{clock_mod.SCHEMA}.{clock_mod.TABLE}" if clock else "user_profiles"
        self._insert_sql, self._update_sql = (q.format(table=table) for q in (_INSERT, _UPDATE))
        self._knobs_lock = threading.Lock()
        self._rng = random.Random(seed)
        # Live failures take the known messages in turn, not at random: a stage's 24 h window
        # on the demo's clock holds a couple of dozen failures, and a known pattern missing
        # from one stage's exit by chance would read as "new" at the next, holding it.
        self._known_errors = itertools.cycle(KNOWN_ERRORS)
        self._due: list[tuple[float, int, InFlight]] = []
        self._seq = itertools.count()
        self._inserts: list[Row] = []
        self._updates: list[tuple[uuid.UUID, str, datetime, datetime | None, str | None]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.rows_written = 0
        self.last_error: str | None = None

    # -- knobs ------------------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        with self._knobs_lock:
            return self._knobs

    def set_knobs(self, **changes: Any) -> Knobs:
        """Change knobs at once (all or none); returns the new set."""
        if self.clock is not None and "time_scale" in changes:
            raise ValueError(
                f"time_scale is the demo's clock here (×{self.clock:g}, set when the world "
                "starts): the data's windows and the holds run on it together"
            )
        with self._knobs_lock:
            self._knobs = self._knobs.evolve(**changes)
            return self._knobs

    def status(self) -> dict[str, Any]:
        return {
            "rows_written": self.rows_written,
            "in_flight": len(self._due),
            "backlog": len(self._inserts) + len(self._updates),
            "last_error": self.last_error,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> Traffic:
        self._thread = threading.Thread(target=self._thread_main, name="demo-traffic", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the traffic simulator did not finish its backfill in time")
        if self._failure is not None:
            raise RuntimeError(f"the traffic backfill failed: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            # The loop may close between the check and the call: then it has stopped already.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(timeout=10)
        self._thread = None

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(), never lost
            self._failure = exc
            log.exception("the traffic simulator stopped")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        conn = await asyncpg.connect(self.dsn)
        try:
            if self.clock is not None:
                await clock_mod.install(conn, self.clock)
            await self._backfill(conn)
        except BaseException:
            await conn.close()
            raise
        self._ready.set()
        await self._live(conn)

    async def _backfill(self, conn: asyncpg.Connection) -> None:
        now, clock = datetime.now(UTC), self.clock
        # On the demo's clock the past is written as the present will be: rate/clock per
        # minute of the world's time, each time `clock` times closer to now.
        rate = self.knobs.rate / clock if clock else self.knobs.rate
        done, processing = backfill(now, rate, self._rng)
        if clock:
            done = [_on_axis(row, now, clock) for row in done]
            processing = [(_on_axis(row, now, clock), d) for row, d in processing]
        records = done + [row for row, _ in processing]
        schema = clock_mod.SCHEMA if clock else None
        await conn.copy_records_to_table(
            "user_profiles", records=records, columns=COLUMNS, schema_name=schema
        )
        self.rows_written += len(records)
        mono, scale = time.monotonic(), self.knobs.time_scale
        for (user_id, _, started, *_), duration in processing:
            # On the axis a start is already `scale` times nearer: its remaining time is too.
            left = started + (duration / scale if clock else duration) - now
            remaining = max(timedelta(0), left if clock else left / scale)
            due = mono + remaining.total_seconds()
            self._schedule(due, InFlight(user_id, "v1", duration, started=started))
        log.info("backfilled %d imports", len(records))

    # -- live -------------------------------------------------------------------------------

    async def _live(self, conn: asyncpg.Connection | None) -> None:
        assert self._stopping is not None
        next_arrival, drawn_for = time.monotonic(), -1.0
        failures = 0
        next_prune = time.monotonic() + PRUNE_EVERY_S
        while not self._stopping.is_set():
            knobs = self.knobs
            mono, now = time.monotonic(), datetime.now(UTC)
            if knobs.rate != drawn_for:  # memoryless: redrawing on a rate change is exact
                next_arrival, drawn_for = self._next_arrival(mono, knobs.rate), knobs.rate
            percent = self._percent()
            while next_arrival <= mono:
                started = now - timedelta(seconds=mono - next_arrival)
                self._arrive(started, next_arrival, percent, knobs)
                next_arrival = self._next_arrival(next_arrival, knobs.rate)
            while self._due and self._due[0][0] <= mono:
                self._finish(heapq.heappop(self._due)[2], now, knobs)
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.dsn, timeout=5)
                    if failures:
                        log.warning("traffic: database back, writing %d held rows", self._backlog())
                await self._flush(conn)
                if self.clock is not None and time.monotonic() >= next_prune:
                    await clock_mod.prune(conn, self.clock)
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                failures = 0
                self.last_error = None
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # the server's goodbye met our next write
            ) as exc:
                # The database restarting or unreachable: keep generating, hold the rows,
                # retry with backoff. Rows are idempotent (fixed ids), so a retry is safe.
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if failures == 1 or failures % 20 == 0:
                    log.warning("traffic: cannot write (%s); retrying", self.last_error)
                if conn is not None:
                    conn.terminate()
                conn = None
                self._trim_backlog()
                await self._sleep(min(5.0, TICK_S * 2**failures))
                continue
            await self._sleep(TICK_S)
        if conn is not None:
            await conn.close(timeout=2)

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _next_arrival(self, after: float, rate: float) -> float:
        if rate <= 0:
            return math.inf
        return after + self._rng.expovariate(rate / 60)

    def _percent(self) -> float:
        try:
            percent = float(self._live_percent())
        except Exception as exc:  # a broken flag source must not stop the imports
            self.last_error = f"reading the live percent: {type(exc).__name__}: {exc}"
            return 0.0  # what the app does with a value it cannot read
        return percent

    def _arrive(self, started: datetime, arrived: float, percent: float, knobs: Knobs) -> None:
        # The app's routing: v2 when random()*100 < percent, decided as the import starts.
        version = "v2" if self._rng.random() * 100 < percent else "v1"
        user_id = _new_id(self._rng)
        stuck = version == "v2" and self._rng.random() < knobs.v2_stuck_rate
        slow = version == "v2" and not stuck and self._rng.random() < knobs.v2_slow_rate
        if stuck:
            duration = STUCK_AFTER
        else:
            duration = _slow_duration(self._rng) if slow else _duration(self._rng)
        self._inserts.append((user_id, "processing", started, None, None, version))
        self._schedule(
            arrived + duration.total_seconds() / knobs.time_scale,
            InFlight(user_id, version, duration, stuck, started if self.clock else None),
        )

    def _finish(self, item: InFlight, now: datetime, knobs: Knobs) -> None:
        if self.clock is not None and item.started is not None:
            # Exact on the axis: finished `duration / clock` after it started, whatever the
            # tick (a quarter second late would read as 15 minutes slower).
            started = item.started
            now = started + item.duration / self.clock
            if item.stuck:  # stays processing and ages by the clock into "stuck"
                return
        else:
            started = now - item.duration
        if item.stuck:  # stays processing, now old enough to count as stuck
            self._updates.append((item.user_id, "processing", started, None, None))
            return
        # Decided at the finish, so a knob change reaches imports already in flight.
        failure_rate = V1_FAILURE_RATE if item.version == "v1" else knobs.v2_failure_rate
        if self._rng.random() >= failure_rate:
            self._updates.append((item.user_id, "complete", started, now, None))
            return
        error = next(self._known_errors).format(n=self._rng.randint(2, 999))
        # Failures beyond v1's own rate are v2's new bug, not v1's known troubles.
        excess = (failure_rate - V1_FAILURE_RATE) / failure_rate
        if item.version == "v2" and self._rng.random() < excess:
            error = _format_error(knobs.v2_error, self._rng)
        self._updates.append((item.user_id, "failed", started, now, error))

    def _schedule(self, due: float, item: InFlight) -> None:
        heapq.heappush(self._due, (due, next(self._seq), item))

    async def _flush(self, conn: asyncpg.Connection) -> None:
        if not self._inserts and not self._updates:
            return
        inserts, updates = self._inserts, self._updates
        async with conn.transaction():
            if inserts:
                await conn.execute(self._insert_sql, *map(list, zip(*inserts, strict=True)))
            if updates:
                await conn.execute(self._update_sql, *map(list, zip(*updates, strict=True)))
        # Only once committed: a failed flush keeps both lists for the retry.
        self._inserts, self._updates = [], []
        self.rows_written += len(inserts)

    def _backlog(self) -> int:
        return len(self._inserts) + len(self._updates)

    def _trim_backlog(self) -> None:
        # A long outage at a high rate must not eat the presenter's memory; the oldest
        # arrivals matter least (their updates then match no row, which is harmless).
        if len(self._inserts) > MAX_BACKLOG:
            del self._inserts[: len(self._inserts) - MAX_BACKLOG]
        if len(self._updates) > MAX_BACKLOG:
            del self._updates[: len(self._updates) - MAX_BACKLOG]


def _on_axis(row: Row, now: datetime, clock: float) -> Row:
    """A row of the world's past, written where the demo's clock reads it back."""
    user_id, status, started, completed, error, version = row
    done = None if completed is None else clock_mod.to_axis(completed, now, clock)
    return (user_id, status, clock_mod.to_axis(started, now, clock), done, error, version)


def _format_error(template: str, rng: random.Random) -> str:
    try:
        return template.format(n=rng.randint(2, 999))
    except (KeyError, IndexError, ValueError):
        return template  # a presenter's own message without {n}, or with other braces
