"""Imports in user_profiles, shaped so each validation query has a known answer.

Every row is placed relative to one clock, the database's now() unless `now` is given,
because the queries window on now(). Rows are deterministic (no randomness), so the
numbers below are exact. Windows keep wide margins (rows for "the last 24 h" start at
most 22.6 h ago, older history at least 25 h ago), so a test running a few seconds
after `load` sees the same answer.

  healthy          1,000 judged imports in 24 h, 990 complete (99.00 %), 10 failed with
                   error patterns already seen in the 7 days before; none stuck; 10 in
                   flight started in the last 15 min, 1 of them v2 (observed share 10 %);
                   100 of the judged imports v2 (a 10 % rollout); durations 1–17 min.
                   Also 5 failed on the user's own export (USER_ERROR, seen the week
                   before too): not judged, they count toward no rate.
  degraded         200 judged imports, 180 complete (90.00 %, Wilson 85.06–93.43), 20
                   failed: 10 with a NEW pattern ("v2 chunker: KeyError …"), 10 known.
                   All failures are v2 (40 v2 imports, 50 %); v1 160/160.
  too_little_data  20 judged imports, 19 complete (95.00 %, Wilson 76.39–99.11).
  stuck            healthy + 12 imports still processing, started 2 h 10 min to 2 h 54
                   min ago: 12 stuck (1,012 judged, 990 complete), and all 12 crossed
                   the 2-hour mark within the last hour, so the stuck-burst trigger
                   (> 10 started 3 h to 2 h ago, still processing) fires.
  empty            nothing started in the last 24 h; only the older history below.
  slow             healthy + 12 complete imports that took 45 min, two finishing in each
                   of the last 6 rolling hours: 1,012 judged, 1,002 complete.

Every scenario also holds 7 days of older v1 history (700 imports, 7
failed with the known patterns, and 2 failed on the user's own export) and two `pending`
profiles that never started.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

SCENARIOS: tuple[str, ...] = ("healthy", "degraded", "too_little_data", "stuck", "empty", "slow")

# Messages v1 has produced for weeks; the numbers vary, the masked pattern does not.
KNOWN_ERRORS: tuple[str, ...] = (
    "RLM timeout after {n}s",
    "Embedding batch {n} failed: connection reset by peer",
    "Upstream rate limited (429), retry in {n} s",
)
# A user's broken export: the runbook's error classes call it the user's, not the pipeline's.
USER_ERROR = "Invalid export archive: missing conversations.json"
NEW_ERROR = "v2 chunker: KeyError 'conversation_id' in chunk {n}"
NEW_ERROR_PATTERN = "v2 chunker: KeyError 'conversation_id' in chunk N"

COLUMNS = (
    "user_id",
    "full_pass_status",
    "full_pass_started_at",
    "full_pass_completed_at",
    "full_pass_error",
    "pipeline_version",
)

Row = tuple[uuid.UUID, str, datetime | None, datetime | None, str | None, str]


class _Rows:
    """Collects rows with deterministic user ids."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(
        self,
        status: str,
        started: datetime | None,
        *,
        minutes: float | None = None,
        error: str | None = None,
        version: str = "v1",
    ) -> None:
        completed = None
        if minutes is not None and started is not None:
            completed = started + timedelta(minutes=minutes)
        user_id = uuid.UUID(int=len(self.rows) + 1)
        self.rows.append((user_id, status, started, completed, error, version))


def _duration(i: int) -> float:
    """1–17 minutes: 60 % under 5, 30 % 5–10, 10 % 12–17."""
    if i % 10 < 6:
        return 1 + i % 4
    if i % 10 < 9:
        return 5 + i % 5
    return 12 + i % 6


def _history(rows: _Rows, now: datetime) -> None:
    """Seven days of v1 before the last 24 h: 700 imports, 7 failed, known patterns; and
    two failed on the user's own export."""
    for i in range(1, 701):
        started = now - timedelta(hours=25) - timedelta(minutes=14 * i)  # 25 h … ~188 h ago
        if i % 100 == 0:
            error = KNOWN_ERRORS[(i // 100) % 3].format(n=290 + i // 100)
            rows.add("failed", started, minutes=3, error=error)
        else:
            rows.add("complete", started, minutes=_duration(i))
    for hours in (30, 100):
        rows.add("failed", now - timedelta(hours=hours), minutes=1, error=USER_ERROR)


def _never_imported(rows: _Rows) -> None:
    rows.add("pending", None)
    rows.add("pending", None)


def _healthy(rows: _Rows, now: datetime) -> None:
    for i in range(1, 1001):
        started = now - timedelta(minutes=20) - timedelta(seconds=80 * i)  # ≤ 22.6 h ago
        version = "v2" if i % 10 == 7 else "v1"
        if i % 100 == 0:
            error = KNOWN_ERRORS[(i // 100) % 3].format(n=300 + i // 100)
            rows.add("failed", started, minutes=4, error=error, version=version)
        else:
            rows.add("complete", started, minutes=_duration(i), version=version)
    # In flight: started in the last 10 minutes, not stuck, not judged yet.
    for i in range(1, 11):
        rows.add("processing", now - timedelta(minutes=i), version="v2" if i == 5 else "v1")
    # The users' own broken exports: failed, and no fault of the pipeline.
    for i in range(1, 6):
        started = now - timedelta(hours=3 * i, minutes=7)  # 3 h 7 min … 15 h 7 min ago
        rows.add("failed", started, minutes=1, error=USER_ERROR)


def _degraded(rows: _Rows, now: datetime) -> None:
    for i in range(1, 201):
        started = now - timedelta(minutes=20) - timedelta(seconds=400 * i)  # ≤ 22.6 h ago
        version = "v2" if i % 5 == 0 else "v1"
        if i % 20 == 0:
            rows.add("failed", started, minutes=2, error=NEW_ERROR.format(n=i), version=version)
        elif i % 10 == 0:
            error = KNOWN_ERRORS[i % 3].format(n=300 + i)
            rows.add("failed", started, minutes=4, error=error, version=version)
        else:
            rows.add("complete", started, minutes=_duration(i), version=version)


def _too_little_data(rows: _Rows, now: datetime) -> None:
    for i in range(1, 21):
        started = now - timedelta(hours=1) - timedelta(minutes=30 * i)
        if i == 20:
            rows.add("failed", started, minutes=3, error=KNOWN_ERRORS[0].format(n=301))
        else:
            rows.add("complete", started, minutes=_duration(i))


def _stuck(rows: _Rows, now: datetime) -> None:
    _healthy(rows, now)
    for i in range(12):
        rows.add("processing", now - timedelta(minutes=130 + 4 * i))  # 2 h 10 … 2 h 54


def _slow(rows: _Rows, now: datetime) -> None:
    _healthy(rows, now)
    for hour in range(6):
        for extra in (10, 40):  # both land in rolling hour `hour` back from now
            finished = now - timedelta(hours=hour, minutes=extra)
            rows.add("complete", finished - timedelta(minutes=45), minutes=45)


_BUILDERS = {
    "healthy": _healthy,
    "degraded": _degraded,
    "too_little_data": _too_little_data,
    "stuck": _stuck,
    "empty": lambda rows, now: None,
    "slow": _slow,
}


async def load(conn: asyncpg.Connection, name: str, *, now: datetime | None = None) -> None:
    """Replace user_profiles' rows with scenario `name`, placed relative to `now`."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if now is None:
        now = await conn.fetchval("SELECT now()")
    rows = _Rows()
    _never_imported(rows)
    _history(rows, now)
    _BUILDERS[name](rows, now)
    async with conn.transaction():
        await conn.execute("TRUNCATE user_profiles")
        await conn.copy_records_to_table("user_profiles", records=rows.rows, columns=COLUMNS)


async def load_dsn(dsn: str, name: str) -> None:
    """`load` on a database given by its DSN."""
    conn = await asyncpg.connect(dsn)
    try:
        await load(conn, name)
    finally:
        await conn.close()
