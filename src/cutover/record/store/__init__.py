"""The state store: where a cutover's record lives, behind one interface (base.Store). Files
beside the journal (files.py, the default) or a Postgres schema shared by the whole team
(postgres.py, team mode: `[store] kind = "postgres"`). Opened once, by the Session."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cutover.record.store.base import Store, StoreProblem, StoreUnavailable, WatcherRunning
from cutover.runbook.model import Runbook

__all__ = ["Store", "StoreProblem", "StoreUnavailable", "WatcherRunning", "open_store"]


def open_store(
    runbook: Runbook,
    environ: Mapping[str, str],
    *,
    actor: str,
    redact: Callable[[str], str],
    key: bytes | None,
) -> Store:
    """The store the runbook's [store] names. Postgres is imported only then: a files
    cutover never pays for the driver. Opening connects nothing yet (the first read does)."""
    from cutover.record.journal import Journal

    local = Journal(runbook.journal_path, actor=actor, redact=redact, key=key)
    if runbook.store.kind == "postgres":
        from cutover.record.store.postgres import PostgresStore

        return PostgresStore(runbook.store, environ, local=local, redact=redact)
    from cutover.record.store.files import FilesStore

    return FilesStore(local)
