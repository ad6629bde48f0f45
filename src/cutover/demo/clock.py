"""The demo world's clock: its data ages as fast as its holds run (an hour a second), so the
shipped queries' windows (24 h, the last hour, 2 h to call an import stuck) pass in seconds
with the SQL untouched, and a world broken on purpose recovers as quickly as it broke.

How: the simulator writes each import on a compressed time axis (born at the real instant
it arrived, finished `duration / scale` later) into `demo_clock.user_profiles`, and
`public.user_profiles` is a view that shows every time stretched back from now by `scale`:
a row written a second ago reads as an hour old. Every query sees one consistent world:
durations, ages and windows all agree, and `now()` is the real now.

A time the console binds as a parameter (the latest rollback's, for `v2_since_rollback`
and the observed share after a rollback) is a real instant: compared with stretched times
as it is, "since the rollback" would cover only the last (time since it)/scale of imports,
and no traffic for a minute. So the demo's copy of such a query reads it on the same clock,
`demo_clock.world_time($1::timestamptz)` (runbook_copy.py writes it), and "since" means
exactly the imports that started after it. Every value cutover binds to a query is such an
instant (keys.QUERY_PARAMS: "rolled_back_at"; the observed share's "since"), so every
positional parameter in a query's code is read on the clock, however the file spells it
(`$1`, `$1::timestamptz`, `$2 :: timestamp with time zone`); comments and strings stay
(runbook_copy.on_the_clock, which reads SQL as the loader does).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

SCHEMA = "demo_clock"  # where the simulator's own table (real instants) lives
TABLE = "user_profiles"
# The demo's hold scale (runbook_copy.HOLD_SCALE): an hour of data ages in a second.
DEFAULT_SCALE = 3600.0
# Rows whose whole life is older than this (in the world's time) leave the table, so it
# stays small however long the demo runs. The queries look back 8 days at most.
KEEP = timedelta(days=9)


PARAM = "$1::timestamptz"  # how the shipped queries take a real instant
WORLD_PARAM = f"{SCHEMA}.world_time({PARAM})"


def _stretched(column: str) -> str:
    return f"{SCHEMA}.world_time(c.{column}) AS {column}"


def install_sql(scale: float) -> str:
    """Move the table aside and put the view in its place (one transaction)."""
    if not scale > 1:
        raise ValueError(f"the demo's clock runs faster than real time, not ×{scale!r}")
    return f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
-- A real instant as the world's clock reads it: `scale` times further back from now.
CREATE FUNCTION {SCHEMA}.world_time(timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT now() - (now() - $1) * {scale!r}::float8 $$;
ALTER TABLE public.{TABLE} SET SCHEMA {SCHEMA};
CREATE VIEW public.{TABLE} AS
SELECT c.user_id,
       c.full_pass_status,
       {_stretched("full_pass_started_at")},
       {_stretched("full_pass_completed_at")},
       c.full_pass_error,
       c.pipeline_version
  FROM {SCHEMA}.{TABLE} AS c;
COMMENT ON VIEW public.{TABLE} IS
    'cutover demo: {TABLE} on the demo''s clock, every time aged ×{scale:g} from now()';
"""


async def install(conn: asyncpg.Connection, scale: float) -> None:
    async with conn.transaction():
        await conn.execute(install_sql(scale))


def to_axis(at: datetime, now: datetime, scale: float) -> datetime:
    """Where a time of the world (`at`, as the queries will read it) is written: `scale`
    times closer to `now`.

    >>> from datetime import UTC
    >>> now = datetime(2026, 1, 2, tzinfo=UTC)
    >>> to_axis(now - timedelta(hours=24), now, 3600).isoformat()
    '2026-01-01T23:59:36+00:00'
    """
    return now - (now - at) / scale


PRUNE_SQL = f"""
DELETE FROM {SCHEMA}.{TABLE}
 WHERE full_pass_status <> 'processing'
   AND coalesce(full_pass_completed_at, full_pass_started_at) < now() - $1::interval
"""


async def prune(conn: asyncpg.Connection, scale: float) -> str:
    """Drop what no query reads any more (a stuck import stays: it is stuck at any age)."""
    return await conn.execute(PRUNE_SQL, KEEP / scale)
