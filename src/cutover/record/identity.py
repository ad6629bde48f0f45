"""Who writes the journal and with what key: the person behind a session (through sudo and
SSH) and the HMAC key that makes the chain one nobody without it can rewrite."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from pathlib import Path

from cutover.base.errors import CutoverError
from cutover.base.redact import JOURNAL_KEY_ENV


def journal_key(environ: Mapping[str, str], key_file: Path | None) -> bytes | None:
    """The journal's key: CUTOVER_JOURNAL_KEY, else the runbook's [journal] key_file; None
    when neither is set. A key file that is named and cannot be read is an error (a journal
    written without its key would then read as broken)."""
    text = environ.get(JOURNAL_KEY_ENV, "").strip()
    if text:
        return text.encode("utf-8")
    if key_file is None:
        return None
    try:
        raw = key_file.read_bytes().strip()
    except OSError as exc:
        raise JournalKeyMissing(
            f"cannot read the journal key file {key_file} ([journal] key_file): "
            f"{exc.strerror or exc}"
        ) from None
    if not raw:
        raise JournalKeyMissing(f"the journal key file {key_file} is empty")
    return raw


class JournalKeyMissing(CutoverError):
    """The runbook names a key file that cannot be read."""


def current_actor(environ: Mapping[str, str] = os.environ) -> str:
    """The login name behind this session (the human, when run through sudo), and where
    they came in from over SSH."""
    name = environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. a bare container uid
            name = f"uid {os.getuid()}"
    ssh = environ.get("SSH_CONNECTION", "").split()
    return f"{name} from {ssh[0]}" if ssh else name
