"""The commands about the runbook itself: `validate` (lint it, and prepare its queries on
Postgres when the DSN is set) and `schema` (its JSON Schema, for editors)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from cutover.cli.common import OK, UsageError, err, out, session_for, warn
from cutover.cli.waiting import Waiting, tell
from cutover.judge.session import Session
from cutover.runbook import loader as runbook_mod
from cutover.runbook.problems import ProblemsFound


def cmd_validate(args: argparse.Namespace) -> int:
    from cutover.runbook.vetted import MEMO

    MEMO.consult = False  # validate judges every text afresh (and remembers what passes)
    session = session_for(args)
    book, shown = session.runbook, runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    http = sum(q.kind == "http" for q in book.queries.values())
    derived = sum(q.kind == "derived" for q in book.queries.values())
    counts = f"{len(book.stages)} stages, {len(book.queries)} queries"
    kinds = [f"{http} over HTTP, fetched when run"] if http else []
    kinds += [f"{derived} derived from others"] if derived else []
    counts += f" ({'; '.join(kinds)})" if kinds else ""
    explain = getattr(args, "explain", False)
    if not session.environ.get(book.database.dsn_env):
        if explain:
            raise UsageError(
                f"--explain asks the database for its plans: set {book.database.dsn_env} to its DSN"
            )
        out(
            f"{shown}: ok ({counts}); {book.database.dsn_env} is not set, so the queries were "
            "not prepared on Postgres"
        )
        return OK
    problems, lacking = asyncio.run(_prepare_all(session, shown))
    if problems:
        raise ProblemsFound(problems)
    # A column a query declares it `needs` is the database's to add, not a runbook mistake:
    # that query WAITs saying so, and the rest of the runbook works.
    for query_id, message in lacking:
        warn([f"query {query_id!r} will wait: {message}"])
    waiting = f" but {len(lacking)}, which wait for a column they need" if lacking else ""
    out(f"{shown}: ok ({counts}, all prepared on Postgres{waiting})")
    if explain:
        for line in asyncio.run(_explain_all(session)):
            out(line)
    return OK


async def _explain_all(session: Session) -> list[str]:
    from cutover.judge.session import query_args
    from cutover.sources import explain

    runner = session.runner(1)
    current, _ = session.state()
    try:
        found = await explain.plans(
            runner, session.runbook.queries.values(), lambda q: query_args(q, current)
        )
    finally:
        await runner.aclose()
    return explain.report(found)


async def _prepare_all(session: Session, shown: Path) -> tuple[list, list[tuple[str, str]]]:
    """Prepare every SQL query on Postgres; then check each column the runbook reads of one.
    Also returns the queries that only lack a column they declare in `needs`."""
    from cutover.runbook import columns, textfile
    from cutover.runbook.load_queries import shown_sql_path

    runner = Waiting(session.runner(1))  # one query at a time: problems in the file's order
    lacking: list[tuple[str, str]] = []
    telling = tell(runner, err)  # a slow database: stderr says which query it waits for
    try:
        await runner.judge_all(session.runbook.queries.values())  # the guard: one round trip
        problems = []
        returned: dict[str, tuple[str, ...]] = {}
        for query in session.runbook.queries.values():
            if query.kind == "http":
                if query.columns:  # what it returns is declared: check what is read of it
                    returned[query.id] = tuple(query.columns)
                continue
            if query.kind == "derived":  # its columns are its expressions (checked on load)
                continue
            shown_file = shown_sql_path(shown, session.runbook.path, query.file)
            prepared = await runner.prepare(query, shown_file)
            if prepared.problem and prepared.needed:
                lacking.append((query.id, prepared.needed))
            elif prepared.problem:
                problems.append(prepared.problem)
            if prepared.columns is not None:
                returned[query.id] = prepared.columns
    finally:
        telling.cancel()
        await runner.aclose()
    text = textfile.read_text(session.runbook.path)
    problems += columns.missing(session.runbook, returned, shown_as=str(shown), text=text)
    ordered = sorted(problems, key=lambda p: (p.file != str(shown), p.file, p.line, p.col))
    return ordered, lacking


def cmd_schema(args: argparse.Namespace) -> int:
    """The runbook's JSON Schema, from the key tables the loader reads (runbook/keys.py):
    needs no runbook."""
    from cutover.runbook.schema import schema

    out(json.dumps(schema(), indent=2, ensure_ascii=False))
    return OK
