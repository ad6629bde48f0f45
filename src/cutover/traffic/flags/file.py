"""A flag kept as text in a local file: written atomically, then read back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from cutover.traffic.flags.base import (
    FlagError,
    FlagState,
    Progress,
    _quiet,
    check_percent,
    parse_percent,
)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FlagError(
            f"cannot read flag file {path}: {exc.strerror}; check its permissions"
        ) from exc


def _write_atomically(path: Path, text: str) -> None:
    # A reader (the app, or another console) must see the old value or the new one, never
    # a torn file: write a temp file beside it, fsync, then rename over it.
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # The rename itself is only durable once the folder's entry is on disk.
        with contextlib.suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise FlagError(
            f"cannot write flag file {path}: {exc.strerror}; "
            "check the folder exists and is writable"
        ) from exc


class FileFlag:
    """The rollout percent as text in one file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = f"file:{self.path}"

    async def read(self) -> FlagState:
        raw = await asyncio.to_thread(_read_text, self.path)
        if raw is None:
            return FlagState(
                None,
                None,
                detail=f"{self.path} does not exist",
                remedy=f"create {self.path} with 0 (or roll back, which writes it), then reconcile",
            )
        percent, note = parse_percent(raw)
        detail = f"{self.path.name}={raw.strip()[:40]}" + (f" · {note}" if note else "")
        return FlagState(percent, raw.strip(), detail=detail)

    async def set(self, percent: int, progress: Progress = _quiet) -> FlagState:
        check_percent(percent)
        progress(f"write {self.path.name}={percent}")
        await asyncio.to_thread(_write_atomically, self.path, f"{percent}\n")
        state = await self.read()
        progress(f"read back {state.raw}")
        if state.percent != percent:
            raise FlagError(
                f"wrote {percent} to {self.path} but read back {state.raw!r}; "
                "something else is writing this file"
            )
        return state

    async def aclose(self) -> None:
        pass
