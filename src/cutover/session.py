"""One operator's session on one runbook: the runbook, its journal, its database. No UI."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cutover import db, journal, redact, state
from cutover.check import CheckReport, judge_stage, queries_for
from cutover.model import Runbook, Stage
from cutover.results import QueryResult


@dataclass
class Session:
    runbook: Runbook
    # Holds the token and the DSN: never in a repr (Textual's crash screen shows locals).
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    journal: journal.Journal = field(init=False)
    # Every text this session shows or writes passes through it (DESIGN principle 8).
    redact: redact.Redactor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.redact = redact.for_runbook(self.runbook, self.environ)
        self.journal = journal.Journal(
            self.runbook.journal_path,
            actor=journal.current_actor(self.environ),
            redact=self.redact,
        )

    def state(self) -> tuple[state.CutoverState, tuple[str, ...]]:
        """The replayed state and any journal warnings (a torn last line, say)."""
        read = self.journal.read()
        return state.replay(self.runbook, read.events), read.warnings

    def runner(self) -> db.QueryRunner:
        """A query runner on the runbook's database; DatabaseUnavailable without a DSN."""
        dsn = db.dsn_from_env(self.runbook.database, self.environ)
        return db.QueryRunner(self.runbook.database, dsn)

    async def run_queries(
        self, runner: db.QueryRunner, query_ids: list[str]
    ) -> dict[str, QueryResult]:
        results = await asyncio.gather(*(runner.run(self.runbook.queries[q]) for q in query_ids))
        return {r.query_id: r for r in results}

    async def check(
        self, runner: db.QueryRunner, stage: Stage
    ) -> tuple[CheckReport, dict[str, QueryResult]]:
        results = await self.run_queries(runner, queries_for(self.runbook, stage))
        return judge_stage(self.runbook, stage, results, datetime.now(UTC)), results
