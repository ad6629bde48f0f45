"""One operator's session on one runbook: the runbook, its journal, its database. No UI."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    # The state folded so far and the last event folded into it: the next state() folds only
    # what the journal verified since (the console asks every second).
    _folded: tuple[int, journal.Event | None, state.CutoverState] | None = field(
        init=False, default=None, repr=False
    )

    def __post_init__(self) -> None:
        self.redact = redact.for_runbook(self.runbook, self.environ)
        self.journal = journal.Journal(
            self.runbook.journal_path,
            actor=journal.current_actor(self.environ),
            redact=self.redact,
        )

    def state(self) -> tuple[state.CutoverState, tuple[str, ...]]:
        """The replayed state and any journal warnings (a torn last line, say). The journal
        is verified as it is read: a broken chain is on the state (`.chain`, which refuses
        advance, step back and sign-off) and is the first warning."""
        read = self.journal.read()
        events = read.events
        folded = self._folded
        if folded and folded[0] and len(events) >= folded[0] and events[folded[0] - 1] is folded[1]:
            current = state.replay(self.runbook, events[folded[0] :], since=folded[2])
        else:  # a first read, or the journal started over (replaced, rewritten, another one)
            current = state.replay(self.runbook, events)
        self._folded = (len(events), events[-1] if events else None, current)
        warnings = read.warnings
        if read.chain is not None:
            current = replace(current, chain=read.chain)
            warnings = (read.chain.message, *warnings)
        return current, warnings

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
