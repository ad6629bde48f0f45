"""A flag behind two shell commands: one prints the percent, the other sets it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping

from cutover.flags.base import FlagError, FlagState, Progress, _quiet, check_percent, parse_percent


def _tail(data: bytes, lines: int = 5) -> str:
    text = data.decode("utf-8", "replace").strip()
    return " | ".join(text.splitlines()[-lines:]) if text else "(no stderr)"


class CommandFlag:
    """`get` prints the stored value on stdout; `set` has {percent} replaced and must exit 0."""

    def __init__(
        self, get: str, set: str, timeout_s: float = 30.0, environ: Mapping[str, str] = os.environ
    ):
        self.get_command = get
        self.set_command = set
        self.timeout_s = timeout_s
        self.name = f"command:{get}"
        self.environ = dict(environ)  # what the commands run with
        # The values of the variables the commands use ($TOKEN, ${KUBECONFIG}…) are secrets
        # as far as we know: a command's stderr (curl -v, say) must not show them.
        names = {*re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", get + " " + set)}
        self._secrets = sorted(
            (environ[n] for n in names if len(environ.get(n, "")) >= 4), key=len, reverse=True
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _run(self, command: str) -> tuple[int, bytes, bytes]:
        # A new session so a timeout kills the whole pipeline the shell started, not just sh.
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.environ,
            start_new_session=True,
        )
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
        return proc.returncode or 0, out, err

    async def read(self) -> FlagState:
        code, out, err = await self._run(self.get_command)
        if code != 0:
            raise FlagError(
                f"flag get command exited {code}: {self.get_command}; "
                f"stderr: {self._scrub(_tail(err))}"
            )
        raw = out.decode("utf-8", "replace").strip()
        percent, note = parse_percent(raw if raw else None)
        detail = f"get → {raw[:40] or '(empty)'}" + (f" · {note}" if note else "")
        return FlagState(percent, raw or None, detail=detail)

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState:
        check_percent(percent)
        command = self.set_command.replace("{percent}", str(percent))
        progress(f"run set {percent}")
        code, _, err = await self._run(command)
        if code != 0:
            raise FlagError(
                f"flag set command exited {code}: {command}; stderr: {self._scrub(_tail(err))}"
            )
        state = await self.read()
        progress(f"read back {state.raw}")
        if state.percent != percent:
            raise FlagError(
                f"set {percent} but the get command reads back {state.raw!r}; "
                "check that set and get talk about the same flag"
            )
        return state

    async def aclose(self) -> None:
        pass
