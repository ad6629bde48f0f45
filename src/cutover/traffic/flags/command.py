"""A flag behind two shell commands: one prints the percent, the other sets it. The commands
see only the variables the runbook lists for them, and what they say is redacted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from cutover.base.redact import Redactor
from cutover.traffic import children
from cutover.traffic.flags.base import (
    FlagError,
    FlagState,
    NoInstant,
    Progress,
    RollbackPlan,
    _quiet,
    check_percent,
    parse_percent,
)

# What every command gets whatever the runbook lists, and why; nothing here is a secret.
SAFE_BASE = (
    "PATH",  # to find kubectl, curl, aws… where the operator's shell finds them
    "HOME",  # where those tools keep their own configuration (~/.kube, ~/.aws)
    "LANG",  # the tools read and write text in the operator's encoding (and LC_*, below)
    "TZ",  # times in their output read as the operator's own
    "USER",  # who is acting, for tools that record it (audit logs, ssh)
    "LOGNAME",  # the same, by its POSIX name
    "TMPDIR",  # where they may write scratch files (a private TMPDIR stays private)
)
SAFE_PREFIX = "LC_"  # LC_ALL, LC_CTYPE…: the locale, as LANG


def command_environ(environ: Mapping[str, str], listed: Iterable[str]) -> dict[str, str]:
    """The environment a flag command runs with: the safe base (LC_* included) and the
    variables the runbook lists in [flag] env, and nothing else: no DSN, no platform token,
    unless the runbook names it for the commands.

    >>> sorted(command_environ({"PATH": "/bin", "LC_TIME": "C", "DSN": "x", "K": "y"}, ["K"]))
    ['K', 'LC_TIME', 'PATH']
    """
    wanted = set(SAFE_BASE) | set(listed)
    return {
        name: value
        for name, value in environ.items()
        if name in wanted or name.startswith(SAFE_PREFIX)
    }


def _unlisted(commands: str, environ: Mapping[str, str], given: Mapping[str, str]) -> str:
    """A hint for a failed command that uses a variable the runbook does not pass on.

    >>> _unlisted("kubectl --kubeconfig $KUBECONFIG", {"KUBECONFIG": "/k"}, {})
    '; it uses $KUBECONFIG, which is set here but not passed on: add it to [flag] env'
    """
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", commands))
    names = sorted(used & (set(environ) - set(given)))
    if not names:
        return ""
    if len(names) == 1:
        return f"; it uses ${names[0]}, which is set here but not passed on: add it to [flag] env"
    shown = ", ".join(f"${n}" for n in names)
    return f"; it uses {shown}, which are set here but not passed on: add them to [flag] env"


def _tail(data: bytes, lines: int = 5) -> str:
    text = data.decode("utf-8", "replace").strip()
    return " | ".join(text.splitlines()[-lines:]) if text else "(no stderr)"


class CommandFlag:
    """`get` prints the stored value on stdout; `set` has {percent} replaced and must exit 0."""

    def __init__(
        self,
        get: str,
        set: str,
        timeout_s: float = 30.0,
        environ: Mapping[str, str] = os.environ,
        env: Iterable[str] = (),
        redact: Callable[[str], str] | None = None,
        child_record: Path | None = None,
        rollback: str = "",
    ):
        self.get_command = get
        # A platform's own instant rollback (`argo rollouts undo …`), run first by a
        # rollback; with {percent} it serves any target, without it only a rollback to 0 %.
        self.rollback_command = rollback
        self.instant = bool(rollback.strip())
        # Where a running command is recorded while it runs (traffic/children.py): an
        # interrupted move settles only once the command has exited.
        self.child_record = child_record
        self.set_command = set
        self.timeout_s = timeout_s
        self.name = f"command:{get}"
        listed = tuple(env)
        self.environ = command_environ(environ, listed)  # what the commands run with
        # What a command says (set -x, curl -v) is shown and journaled: the session's
        # redactor when given; else one over the values of the listed variables, which are
        # the only secrets the commands were given.
        self.redact = redact or Redactor(environ.get(name, "") for name in listed)
        self._hint = _unlisted(get + " " + set + " " + rollback, environ, self.environ)

    async def _run(self, command: str, *, moves: bool = False) -> tuple[int, bytes, bytes]:
        """Run one command; `moves` (the set command) records it while it runs."""
        # A new session so a timeout kills the whole pipeline the shell started, not just sh.
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.environ,
            start_new_session=True,
        )
        recorded = moves and self.child_record is not None
        if recorded:
            children.started(self.child_record, proc.pid, command)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise FlagError(
                f"flag command timed out after {self.timeout_s:g} s and was killed: {command}; "
                "check what it waits on, or raise [flag] timeout",
                retryable=True,
            ) from None
        finally:
            if recorded and proc.returncode is not None:
                children.ended(self.child_record, proc.pid)
        return proc.returncode or 0, out, err

    async def read(self) -> FlagState:
        code, out, err = await self._run(self.get_command)
        if code != 0:
            raise FlagError(
                f"flag get command exited {code}: {self.get_command}{self._hint}",
                said=f"stderr: {self.redact(_tail(err))}",
            )
        raw = self.redact(out.decode("utf-8", "replace").strip())
        percent, note = parse_percent(raw if raw else None)
        detail = f"get → {raw[:40] or '(empty)'}" + (f" · {note}" if note else "")
        return FlagState(
            percent,
            raw or None,
            detail=detail,
            remedy="roll back (it runs your set command), or run it by hand, then reconcile",
        )

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState:
        check_percent(percent)
        command = self.set_command.replace("{percent}", str(percent))
        progress(f"run set {percent}")
        code, _, err = await self._run(command, moves=True)
        if code != 0:
            raise FlagError(
                f"flag set command exited {code}: {command}{self._hint}",
                said=f"stderr: {self.redact(_tail(err))}",
            )
        state = await self.read()
        progress(f"read back {state.raw}")
        if state.percent != percent:
            raise FlagError(
                f"set {percent} but the get command reads back {state.raw!r}; "
                "check that set and get talk about the same flag"
            )
        return state

    # -- a rollback command -------------------------------------------------------------------

    def _rollback_for(self, percent: int) -> str | None:
        if not self.instant:
            return None
        if "{percent}" in self.rollback_command:
            return self.rollback_command.replace("{percent}", str(percent))
        return self.rollback_command if percent == 0 else None

    async def plan_rollback(self, percent: int, *, revert_ok: bool = False) -> RollbackPlan:
        command = self._rollback_for(percent)
        if command is None:
            return RollbackPlan(percent, False, why=self._no_rollback(percent))
        return RollbackPlan(percent, True, why=f"the runbook's rollback command: {command}")

    def _no_rollback(self, percent: int) -> str:
        if not self.instant:
            return "the runbook gives no [flag] rollback command"
        return (
            "the rollback command has no {percent}: it serves only a rollback to 0 %, "
            f"not {percent} %"
        )

    async def roll_back(
        self, percent: int, progress: Progress = _quiet, *, revert_ok: bool = False
    ) -> FlagState:
        """Run the rollback command, then read the flag back; NoInstant when it fails, so
        the rollback runs the set command instead."""
        check_percent(percent)
        command = self._rollback_for(percent)
        if command is None:
            raise NoInstant(self._no_rollback(percent))
        progress(f"run rollback {percent}")
        code, _, err = await self._run(command, moves=True)
        if code != 0:
            progress(f"rollback command said: {self.redact(_tail(err))}")
            raise NoInstant(f"the rollback command exited {code}: {command}{self._hint}")
        live_at = time.monotonic()
        state = await self.read()
        progress(f"read back {state.raw}")
        if state.percent != percent:
            raise NoInstant(
                f"the rollback command exited 0 but the get command reads back {state.raw!r}"
            )
        return replace(state, how=f"the rollback command ({command})", live_at=live_at)

    async def store(self, percent: int, progress: Progress = _quiet) -> None:
        await self.set(percent, progress)

    async def aclose(self) -> None:
        pass
