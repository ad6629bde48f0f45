"""Flags: where the rollout percent lives, one module per platform, opened from the runbook.
A platform's module (and its HTTP client) is imported when a flag of that kind is opened."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover.runbook import model
from cutover.traffic.flags.base import (
    Flag,
    FlagError,
    FlagState,
    InstantFlag,
    Known,
    NoInstant,
    Progress,
    RollbackPlan,
    parse_percent,
)

if TYPE_CHECKING:
    from cutover.judge.session import Session
    from cutover.traffic.flags.command import CommandFlag
    from cutover.traffic.flags.file import FileFlag
    from cutover.traffic.flags.vercel import VercelFlag

_ADAPTERS = {
    "CommandFlag": "cutover.traffic.flags.command",
    "FileFlag": "cutover.traffic.flags.file",
    "VercelFlag": "cutover.traffic.flags.vercel",
}


def __getattr__(name: str) -> Any:
    """`flags.VercelFlag` and the others, imported on first use."""
    if name in _ADAPTERS:
        return getattr(importlib.import_module(_ADAPTERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CommandFlag",
    "FileFlag",
    "Flag",
    "FlagError",
    "FlagState",
    "InstantFlag",
    "NoInstant",
    "Progress",
    "RollbackPlan",
    "VercelFlag",
    "open_flag",
    "open_flag_or_none",
    "parse_percent",
    "session_flag",
]


def open_flag(
    config: model.Flag,
    environ: Mapping[str, str] = os.environ,
    redact: Callable[[str], str] | None = None,
    child_record: Path | None = None,
    known: Known | None = None,
) -> Flag:
    """The flag the runbook's [flag] table describes; secrets come from `environ` by name.
    `redact` (the session's) hides secrets in what a command flag's commands say; `known`
    tells what the journal knows each deployment carries (session_flag gives it)."""
    if config.kind == "vercel":
        if not config.project or not config.key:
            raise FlagError('[flag] kind = "vercel" needs project and key')
        token = environ.get(config.token_env, "")
        if config.token_file is None and not token.strip():
            raise FlagError(
                f"the environment variable {config.token_env} is not set; export a Vercel "
                f"token with access to project {config.project} in it (the runbook names "
                "the variable in [flag] token_env)"
            )
        from cutover.traffic.flags.vercel import DEFAULT_API_URL, VercelFlag

        return VercelFlag(
            project=config.project,
            key=config.key,
            target=config.target,
            token=token.strip(),
            token_env=config.token_env,
            token_file=config.token_file,
            team_id=config.team_id,
            redeploy=config.redeploy,
            rollback=config.rollback,
            known=known,
            base_url=environ.get("VERCEL_API_URL", DEFAULT_API_URL),
        )
    if config.kind == "file":
        if config.path is None:
            raise FlagError('[flag] kind = "file" needs path')
        from cutover.traffic.flags.file import FileFlag

        return FileFlag(config.path)
    if config.kind == "command":
        if not config.get or not config.set:
            raise FlagError('[flag] kind = "command" needs both get and set')
        from cutover.traffic.flags.command import CommandFlag

        return CommandFlag(
            config.get,
            config.set,
            timeout_s=config.timeout_s,
            environ=environ,
            env=config.env,
            redact=redact,
            child_record=child_record,
            rollback=config.rollback_command,
        )
    raise FlagError(f"[flag] kind {config.kind!r} is not known; use vercel, file or command")


def session_flag(session: Session) -> Flag:
    """The session's flag: a command flag records its set command beside the journal, and a
    Vercel flag knows what the session's journal says each deployment carries (asked afresh
    at every use: another process may have journaled one since)."""
    from cutover.traffic.children import record_path

    def known() -> Mapping:
        return session.state()[0].deployments

    child = record_path(session.runbook.journal_path)
    return open_flag(session.runbook.flag, session.environ, session.redact, child, known=known)


def open_flag_or_none(session: Session) -> tuple[Flag | None, str | None]:
    """The session's flag, or None and why it cannot be opened (said, never raised: a console
    or a watcher without its flag still shows and judges everything else)."""
    try:
        return session_flag(session), None
    except FlagError as exc:
        return None, str(exc)
