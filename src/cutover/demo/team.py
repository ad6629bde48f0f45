"""`cutover demo --team`: the demo's world (the same runbook copy, data and clock) with the
cutover's record on the demo's own Postgres (team mode, demo/team_store.py) and two consoles
side by side in tmux, two operators (ana and ben): what one signs, the other sees at once.
Each console is an ordinary command, printed first, so two terminals do without tmux."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cutover.base.errors import CutoverError
from cutover.base.redact import for_runbook
from cutover.demo import clock as clock_mod
from cutover.demo import team_store
from cutover.demo.runbook_copy import NotAnOriginal
from cutover.demo.world import (
    DEMO_RATE,
    WATCH_LOG,
    World,
    _configure_logging,
    _how_to,
    _missing_demo_extra,
    _say,
    _source_runbook,
    _stop_on_signals,
    _Stopped,
    env_lines,
    log,
)
from cutover.runbook.problems import ProblemsFound

OPERATORS = ("ana", "ben")
SESSION = "team"  # the tmux session, on a server (socket) of the demo's own
NO_TMUX = (
    "cutover demo --team: tmux is not installed (it opens the two consoles side by side); "
    "install it, or run `cutover demo --team --headless` and open the two consoles it prints "
    "in two terminals"
)


def socket_name(args: argparse.Namespace) -> str:
    """A tmux server of the demo's own: the operator's own tmux sessions are never touched,
    and stopping the demo stops exactly its consoles."""
    return getattr(args, "tmux_socket", None) or f"cutover-team-{os.getpid()}"


def console_command(env_file: Path, user: str) -> str:
    """One operator's console, as typed in a shell. SUDO_USER goes: cutover takes it before
    USER, and it would make both operators the same person."""
    cwd = Path.cwd()
    shown = env_file.relative_to(cwd) if env_file.is_relative_to(cwd) else env_file
    return f"source {shlex.quote(str(shown))} && env -u SUDO_USER USER={user} cutover tui"


def pane_command(env_file: Path, user: str) -> str:
    """The console in a pane (POSIX sh: `.`, not `source`). A console that fails to start
    leaves its words on screen until Enter, rather than a pane that vanishes."""
    env = shlex.quote(str(env_file))
    return (
        f". {env} && env -u SUDO_USER USER={user} cutover tui "
        f'|| {{ echo "cutover: {user}\'s console ended ($?); press Enter"; read _; }}'
    )


class TmuxFailed(CutoverError):
    """A tmux command the team demo needs failed; the message is tmux's first line."""


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """tmux's answer; with `check`, a failure raises TmuxFailed in tmux's own words (not
        the argv of a CalledProcessError, which carries both pane commands)."""
        try:
            done = subprocess.run(
                ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20
            )
        except subprocess.TimeoutExpired:
            if not check:
                raise
            raise TmuxFailed(f"tmux {args[0]} did not answer in 20 s") from None
        if check and done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            why = said[0] if said else f"exit status {done.returncode}"
            raise TmuxFailed(f"tmux {args[0]} failed: {why}")
        return done

    def running(self) -> bool:
        return self("has-session", "-t", SESSION, check=False).returncode == 0

    def open_consoles(self, env_file: Path) -> None:
        """Two panes side by side, ana's on the left."""
        width, height = _terminal_size()
        left, right = (pane_command(env_file, user) for user in OPERATORS)
        self("new-session", "-d", "-s", SESSION, "-x", str(width), "-y", str(height), left)
        self("split-window", "-h", "-t", SESSION, right)
        self("select-layout", "-t", SESSION, "even-horizontal")
        self("select-pane", "-t", f"{SESSION}:0.0")

    def attach(self) -> None:
        # Run from inside another tmux, the client refuses to nest unless TMUX is unset.
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        subprocess.run(["tmux", "-L", self.socket, "attach", "-t", SESSION], env=env)

    def stop(self) -> None:
        self("kill-server", check=False)


def _terminal_size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        return max(size.columns, 160), max(size.lines, 40)
    except OSError:
        return 240, 50  # not a terminal: wide enough for two consoles a side


def run(args: argparse.Namespace) -> int:
    headless = bool(getattr(args, "headless", False))
    if not headless and shutil.which("tmux") is None:
        _say(NO_TMUX)
        return 2
    missing = _missing_demo_extra()
    if missing:
        _say(missing)
        return 2
    if getattr(args, "keep", False):
        _say(
            "cutover demo --team: --keep keeps a files journal; the team demo's record lives "
            "in the demo's database, which is fresh on every start"
        )
        return 2
    demo_dir = Path(getattr(args, "dir", ".cutover/demo"))
    source = _source_runbook(getattr(args, "runbook", None), os.environ)
    # With tmux on the terminal, the log goes to the file only: stderr would scribble on it.
    log_format = _configure_logging(demo_dir, headless)
    world = World(
        demo_dir,
        runbook=source,
        rate=getattr(args, "rate", DEMO_RATE),
        build_seconds=getattr(args, "build_seconds", 5.0),
        hobby=bool(getattr(args, "hobby", False)),
        clock=clock_mod.DEFAULT_SCALE,
        team=True,
    )
    tmux = None if headless else Tmux(socket_name(args))
    with _stop_on_signals(world):
        try:
            _say(f"cutover demo --team: starting the world for {source} (Postgres, team mode)…")
            world.start()
            log_format.redact = for_runbook(world.book, world.environ)
            os.environ.update(world.environ)
            world.start_watcher()
            _say(
                f"cutover demo --team: the record is on the demo's Postgres (schema "
                f"{team_store.SCHEMA}, role {team_store.WRITER}); the watcher leads and says "
                f"what changed in {demo_dir / WATCH_LOG}. Two operators' consoles:"
            )
            for user in OPERATORS:
                print(f"  {user}: {console_command(world.env_file, user)}", flush=True)
            if tmux is None:
                print("\n".join(env_lines(world.environ)), flush=True)
                print(_how_to(world), flush=True)
                while True:
                    time.sleep(3600)
            tmux.open_consoles(world.env_file)
            return _until_closed(tmux)
        except (KeyboardInterrupt, _Stopped):
            return 0
        except ProblemsFound:
            raise
        except (NotAnOriginal, TmuxFailed) as exc:
            _say(f"cutover demo: {exc}")
            return 2
        except Exception as exc:
            log.exception("the team demo failed")
            _say(f"cutover demo: {type(exc).__name__}: {exc} (details in {demo_dir}/world.log)")
            return 2
        finally:
            world.stopping = True  # from here a second signal must not cut the clean-up short
            if tmux is not None:
                tmux.stop()  # consoles still open would read a world that is gone
            world.stop()
            _say("cutover demo: the world is stopped; nothing is left running.")


def _until_closed(tmux: Tmux) -> int:
    """On a terminal, attach; once both consoles are quit (q in each) the session ends and
    the world stops. Detached, or with no terminal, wait for that, saying how to reach them."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        tmux.attach()
    if tmux.running():
        _say(
            f"cutover demo --team: the consoles run in tmux: tmux -L {tmux.socket} attach -t "
            f"{SESSION}; q in both (or Ctrl-C here) stops the world"
        )
    while tmux.running():
        time.sleep(0.5)
    return 0
