"""Files for this user's eyes only: what cutover writes that holds data or secrets (exports,
demo.env, the demo's log) is 0600 inside a 0700 folder, whatever the umask says."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """`path` as a folder only this user can enter. Folders it has to create (parents too)
    are made 0700; one that exists is tightened to 0700 when `tighten` says cutover owns it
    (never a folder the operator merely named, such as the one holding `--dir`)."""
    missing = []
    walk = path
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    # mkdir's mode is cut by the umask and parents get the default mode: set it exactly.
    for folder in missing:
        os.chmod(folder, FOLDER_MODE)
    if tighten and stat.S_IMODE(path.stat().st_mode) & ~FOLDER_MODE:
        os.chmod(path, FOLDER_MODE)
    return path


def open_private(path: Path, mode: str = "w", **kwargs: object) -> IO:
    """`open(path, mode)` for writing a file only this user can read: created 0600, and an
    older file left wider is narrowed before a byte is written."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)  # type: ignore[call-overload]
    except BaseException:
        os.close(fd)
        raise
