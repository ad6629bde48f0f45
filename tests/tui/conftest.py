"""Small runbooks written into tmp_path, a file flag, and two ways to feed the panels: a real
Postgres (the suite's embedded server) or a scripted runner for pixel-stable snapshots; a
clock the test moves by hand, and evidence written as a watcher would have written it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.judge.session import Session
from cutover.record.evidence import Evaluation, EvidenceStore
from cutover.record.journal import Journal
from cutover.runbook import loader as runbook
from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui.app import CutoverApp
from cutover.tui.messages import QueryFinished

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

RUNBOOK = """\
version = 1
title = "test cutover: old → new"

[database]
dsn_env = "TEST_DSN"
statement_timeout = "5s"

[journal]
path = "journal.jsonl"

[flag]
kind = "file"
path = "flag/percent"

[queries.success]
title = "Success rate"
file = "queries/success.sql"
refresh = "30s"

[queries.errors]
title = "Top errors"
file = "queries/errors.sql"
refresh = "30s"

[[stages]]
id = "prep"
title = "Prerequisites"
percent = 0

  [[stages.steps]]
  id = "ready"
  text = "Team is ready"

  [[stages.steps]]
  id = "backup"
  text = "Backup taken"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "{hold}"

  [[stages.steps]]
  id = "no_complaints"
  text = "Zero user complaints"

  [[stages.gates]]
  id = "success"
  query = "success"
  column = "rate"
  op = ">="
  value = 95

[[stages]]
id = "half"
title = "Half"
percent = 50
hold = "1h"

[[triggers]]
id = "success_low"
title = "Success below 90 %"
query = "success"
column = "rate"
op = "<"
value = 90
severity = "critical"
"""

SUCCESS_SQL = """\
-- Success rate
-- The share of imports that completed, last 24 h.
SELECT {rate} AS rate, 1234567 AS total, NULL::int AS stuck;
"""

ERRORS_SQL = """\
-- Top errors
-- The most common error messages.
SELECT 'timeout' AS error, 12 AS n;
"""


OBSERVED = """
[queries.share]
title = "Observed v2 share, last 15 min"
file = "queries/share.sql"
refresh = "30s"
"""

SHARE_SQL = """\
-- Observed v2 share, last 15 min
-- Of the imports started in the last 15 minutes, the share that went to v2.
SELECT 412 AS imports, 3 AS v2_imports, 0.728155::float8 AS v2_pct;
"""

# A probe nobody answers: connection refused on a loopback port, at once.
PROBE = """
[probes.api]
url = "http://127.0.0.1:9/health"
expect_status = 200
timeout = "2s"
"""


# Triggers that speak in time: one that must persist (`for`), two raised by people.
TIME_TRIGGERS = """
[[triggers]]
id = "slow"
title = "Success below 97 % for 6 h"
query = "success"
column = "rate"
op = "<"
value = 97
for = "6h"
severity = "critical"

[[triggers]]
id = "complaints"
title = "User complaints about imports"
kind = "manual"
severity = "high"
respond_within = "1h"

[[triggers]]
id = "corruption"
title = "Data corruption"
kind = "manual"
severity = "critical"
"""


def write_runbook(
    folder: Path,
    *,
    rate: str = "99.5",
    success_sql: str | None = None,
    errors_sql: str = ERRORS_SQL,
    hold: str = "0s",
    percent: int = 0,
    observed: bool = False,
    probe: bool = False,
    triggers: str = "",
) -> Path:
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    (folder / "queries" / "success.sql").write_text(success_sql or SUCCESS_SQL.format(rate=rate))
    (folder / "queries" / "errors.sql").write_text(errors_sql)
    (folder / "flag").mkdir(exist_ok=True)
    (folder / "flag" / "percent").write_text(f"{percent}\n")
    path = folder / "runbook.toml"
    text = RUNBOOK.replace("{hold}", hold)
    if observed:
        (folder / "queries" / "share.sql").write_text(SHARE_SQL)
        text = text.replace(
            'path = "flag/percent"\n',
            'path = "flag/percent"\nobserved = { query = "share", column = "v2_pct" }\n',
        )
        text = text.replace("\n[[stages]]", OBSERVED + "\n[[stages]]", 1)
    if probe:
        text = text.replace(
            '  text = "Backup taken"\n', '  text = "Backup taken"\n  probe = "api"\n'
        )
        text = text.replace("\n[[stages]]", PROBE + "\n[[stages]]", 1)
    path.write_text(text + triggers)
    return path


def session_for(path: Path, dsn: str = "", clock: Callable[[], datetime] | None = None) -> Session:
    env = {"USER": "ops", "TEST_DSN": dsn}
    session = Session(runbook.load(path), env)
    if clock is not None:
        session.journal = Journal(
            session.runbook.journal_path, actor="ops", host="box", clock=clock
        )
    return session


@dataclass
class ScriptedRunner:
    """Stands in for QueryRunner: answers each query with the rows the test wrote down, at
    the fixed clock, so a snapshot shows the same ages and durations every run."""

    rows: dict[str, tuple[tuple[str, ...], tuple[tuple, ...]]]
    clock: Callable[[], datetime]
    errors: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    async def connect(self) -> None:
        return None

    async def run(self, query: Query, *args: object) -> QueryResult:
        return self.answer(query)

    def answer(self, query: Query) -> QueryResult:
        self.runs.append(query.id)
        ran_at = self.clock() - timedelta(seconds=5)
        if query.id in self.errors:
            return QueryResult(
                query.id, ran_at=ran_at, duration_s=0.012, error=self.errors[query.id]
            )
        columns, rows = self.rows[query.id]
        return QueryResult(query.id, columns, rows, ran_at=ran_at, duration_s=0.012)

    async def aclose(self) -> None:
        return None


def scripted(clock: Callable[[], datetime], rate: float = 99.5) -> ScriptedRunner:
    return ScriptedRunner(
        rows={
            "share": (("imports", "v2_imports", "v2_pct"), ((412, 3, 0.728155),)),
            "success": (("rate", "total", "stuck"), ((rate, 1234567, None),)),
            "errors": (("error", "n"), (("timeout", 12), ("[bold]markup[/bold]", 0))),
        },
        clock=clock,
    )


class Clock:
    """A clock the test moves by hand (the console's, and the journal's once set up)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


PERCENT = {"prep": 0, "canary": 10, "half": 50}


def fixed_app(
    tmp_path: Path,
    *,
    rate: float = 99.5,
    stage: str = "prep",
    signed: bool = False,
    observed: bool = False,
    probe: bool = False,
    clock: Clock | None = None,
    triggers: str = "",
    hold: str = "24h",
    actor: str = "ops",
    **kw,
) -> CutoverApp:
    """A console whose every moving part stands still: clock, rows, journal times. With a
    `clock`, time moves when the test moves it: the journal's setup events are at T0 - 3 h
    (canary entered then; half at T0 - 2 h), what the console journals is at the clock."""

    def fixed() -> datetime:
        return T0

    path = write_runbook(
        tmp_path,
        percent=PERCENT[stage],
        hold=hold,
        observed=observed,
        probe=probe,
        triggers=triggers,
    )
    journal_time: list[Callable[[], datetime]] = [lambda: T0 - timedelta(hours=3)]
    session = session_for(path, clock=lambda: journal_time[0]())
    if actor != "ops":
        session.journal.actor = actor
    session.journal.append(
        "signoff", stage="prep", step="ready", visit=1, note="", override=False, probe=None
    )
    if stage != "prep" or signed:
        session.journal.append(
            "signoff", stage="prep", step="backup", visit=1, note="", override=False, probe=None
        )
    if stage != "prep":
        session.journal.append(
            "advance.intent",
            action="a1",
            from_stage="prep",
            to_stage="canary",
            from_percent=0,
            to_percent=10,
            reason="",
        )
        session.journal.append(
            "advance.done", action="a1", flag_percent=10, verified="flag reads 10 %", took_s=0.1
        )
    if stage == "half":
        journal_time[0] = lambda: T0 - timedelta(hours=2)
        session.journal.append(
            "signoff",
            stage="canary",
            step="no_complaints",
            visit=2,
            note="",
            override=False,
            probe=None,
        )
        session.journal.append(
            "advance.intent",
            action="a2",
            from_stage="canary",
            to_stage="half",
            from_percent=10,
            to_percent=50,
            reason="",
        )
        session.journal.append(
            "advance.done", action="a2", flag_percent=50, verified="flag reads 50 %", took_s=0.1
        )
    now = clock or fixed
    if clock is not None:
        journal_time[0] = clock
    runner = scripted(now, rate)
    return CutoverApp(
        session,
        clock=now,
        runner_factory=lambda: runner,
        probe_poll_s=None,
        **kw,
    )


def runner_of(app: CutoverApp) -> ScriptedRunner:
    return app.refresher.runner_factory()  # type: ignore[return-value]


def evaluate(app: CutoverApp, clock: Clock, **delta: float) -> None:
    """Move the clock and have every query answer at the new time, as a refresh would, in
    one go: no tick in between sees the old rows gone stale."""
    clock.advance(**delta)
    runner = runner_of(app)
    for query in app.runbook.queries.values():
        app.on_query_finished(QueryFinished(runner.answer(query)))


def set_rate(app: CutoverApp, rate: float) -> None:
    runner_of(app).rows["success"] = (("rate", "total", "stuck"), ((rate, 1234567, None),))


def watched(
    session: Session,
    what: str,
    name: str,
    verdict: str,
    start: datetime,
    end: datetime,
    *,
    stage: str = "canary",
    every: timedelta = timedelta(minutes=5),
    reason: str = "",
) -> None:
    """Evidence as `cutover watch` records it: `name` evaluated every `every` from `start`
    to `end` with one verdict."""
    store = EvidenceStore(session.evidence_path, by="watch", break_s=3600, flush_s=300)
    digests = session.sql_digests()
    query = next(
        (g.check.query for s in session.runbook.stages for g in s.gates if g.id == name),
        None,
    ) or next(t.check.query for t in session.runbook.triggers if t.id == name and t.check)
    at = start
    while at <= end:
        store.record(
            [Evaluation(what, name, stage, verdict, None, None, reason, digests[query], at)]
        )
        at += every
    store.flush()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def spy_on_what_it_says(app: CutoverApp) -> list[str]:
    """Every message the console says, kept: a toast expires after 5 s, and on a loaded
    machine a test may look later than that."""
    said: list[str] = []
    say = app.say

    def keep(message: str, severity: str = "information") -> None:
        said.append(message)
        say(message, severity)

    app.say = keep  # type: ignore[method-assign]
    return said


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def visible_text(app) -> str:
    """What the operator sees right now: the top screen composited over the ones below it,
    as plain text (the same picture Textual's screenshots take)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def moved_elsewhere(app, from_stage: str, to_stage: str, to_percent: int, kind="advance") -> None:
    """Another console (or a headless command) moved traffic: its journal lines and the flag."""
    other = session_for(app.runbook.path)
    visit = other.state()[0].visit
    other.journal.append(
        f"{kind}.intent",
        action=f"elsewhere-{visit}",
        from_stage=from_stage,
        to_stage=to_stage,
        from_percent=app.runbook.stage(from_stage).percent,
        to_percent=to_percent,
        reason="",
    )
    other.journal.append(
        f"{kind}.done",
        action=f"elsewhere-{visit}",
        flag_percent=to_percent,
        verified=f"flag reads {to_percent} %",
        took_s=0.1,
    )
    (app.runbook.folder / "flag" / "percent").write_text(f"{to_percent}\n")
