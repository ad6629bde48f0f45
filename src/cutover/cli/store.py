"""`cutover store init | import | export`: team mode's state store (the record on Postgres)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cutover.cli.common import OK, UsageError, out, use_redactor, warn


def cmd_store(args: argparse.Namespace) -> int:
    from cutover.base import redact
    from cutover.runbook import loader as runbook_mod

    what = getattr(args, "store_command", None)
    if what is None:
        raise UsageError("say what: cutover store init | import | export")
    path = runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    book = runbook_mod.load(path, shown_as=str(path))
    if book.store.kind != "postgres":
        raise UsageError(
            'this runbook keeps its record in files; team mode needs [store] kind = "postgres" '
            "(with dsn_env and schema) in the runbook first"
        )
    if what == "init":
        from cutover.record.store import pgschema

        name = args.dsn_env or book.store.dsn_env
        dsn = os.environ.get(name, "").strip()
        if not dsn:
            raise UsageError(f"{name} is not set: export the DSN of the schema's owner in it")
        words = redact.Redactor([dsn])
        use_redactor(words)
        for line in pgschema.init_now(dsn, book.store.schema, args.grant, words):
            out(line)
        return OK
    from cutover.cli.common import session_for
    from cutover.record.store import transfer
    from cutover.record.store.postgres import PostgresStore

    session = session_for(args)
    store = session.store
    assert isinstance(store, PostgresStore)
    if what == "import":
        source = Path(args.source) if args.source else book.journal_path
        moved = transfer.import_files(store, source)
        warn(moved.skipped)
        out(moved.words("imported") + f" into {store.where}; the chain verifies")
        return OK
    target = Path(args.to)
    moved = transfer.export_files(store, target)
    out(moved.words("exported") + f" to {target}")
    return OK
