"""The runbook as typed, frozen objects: what the loader makes of runbook.toml, and what every
other layer reads."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from cutover.runbook.expressions import Expression
from cutover.runbook.frozen import frozen

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Severity = Literal["critical", "high", "medium"]

# With `confidence` unset, a comparison of successes/trials is judged at this confidence.
DEFAULT_CONFIDENCE = 0.95
PREVIOUS = "previous"  # `against = { baseline = "previous" }`: the stage before this one
# Cliff's δ below 0.147 is "negligible" (Romano et al. 2006): a distribution gate without a
# margin passes when the whole interval of δ says durations moved less than that. A margin
# of 0 would pass only on a significant speed-up, which is not what "no slowdown" means.
DEFAULT_DISTRIBUTION_MARGIN = 0.147


def boundary(op: Op, margin: float, *, trigger: bool) -> float:
    """The threshold on the difference this − other: the margin is tolerated in the new
    side's favour. A gate `>=` with margin 1 passes down to −1 (this may be up to 1 below
    the other); a trigger `<` with margin 1 fires below −1. So a gate and its negated
    trigger share one boundary. `==` and `!=` compare with the band ±margin instead.

    >>> boundary(">=", 1, trigger=False), boundary("<", 1, trigger=True)
    (-1.0, -1.0)
    >>> boundary("<=", 0.147, trigger=False), boundary(">", 0.147, trigger=True)
    (0.147, 0.147)
    """
    if op in ("==", "!="):
        return 0.0
    below = (op in (">", ">=")) != trigger
    return 0.0 - margin if below else float(margin)


@frozen
class Database:
    dsn_env: str = "CUTOVER_DATABASE_URL"
    statement_timeout_s: float = 5.0
    pooler: Literal["session", "transaction"] = "session"


@frozen
class StateStore:
    """Where the record (journal, evidence, snapshots, locks) lives: files beside the journal,
    or a Postgres schema shared by every console and watcher of the team."""

    kind: Literal["files", "postgres"] = "files"
    dsn_env: str = "CUTOVER_STATE_URL"
    schema: str = "cutover"
    cutover: str = ""  # the cutover's id in the store; the loader fills it from the title


@frozen
class Observed:
    """The query and column that show the share of traffic actually on the new path."""

    query: str
    column: str


@frozen
class Flag:
    """Where the rollout percent lives. Fields not used by `kind` keep their defaults."""

    kind: Literal["vercel", "file", "command"]
    # vercel
    project: str = ""
    key: str = ""
    target: str = "production"
    token_env: str = "VERCEL_TOKEN"
    team_id: str | None = None
    redeploy: bool = True
    # "instant": a rollback re-points production at a deployment known to carry the target
    # (no build); "redeploy": it sets the variable and builds, as an advance does.
    rollback: Literal["instant", "redeploy"] = "instant"
    # The token from this file (expanded, against the runbook's folder), read afresh at every
    # attempt, instead of from token_env: it can be fixed while a rollback waits.
    token_file: Path | None = None
    # file (already resolved against the runbook's folder)
    path: Path | None = None
    # command
    get: str = ""
    set: str = ""
    timeout_s: float = 30.0
    # A command a rollback runs first, with {percent} replaced (a platform's own instant
    # rollback); the set command when it fails or is not given.
    rollback_command: str = ""
    # The only variables (beyond a minimal safe base) the commands see; their values are
    # secrets as far as cutover knows, and are redacted wherever they could show.
    env: tuple[str, ...] = ()
    observed: Observed | None = None


@frozen
class Probe:
    """An HTTP check. `url` may hold ${NAME} or ${NAME:-default}, expanded at run time."""

    id: str
    url: str
    method: str = "GET"
    expect_status: int | None = 200
    expect_json: dict = field(default_factory=dict)
    expect_headers: dict = field(default_factory=dict)  # name -> exact value, or True: present
    deprecation: bool = False  # check Deprecation / Sunset / Link as a deprecated endpoint must
    timeout_s: float = 10.0
    json: Any = None  # a JSON body to send (with Content-Type: application/json)
    # header -> its value as a template of environment variables ("Bearer ${TOKEN}"), or the
    # bare name of the variable holding it: values are secrets, never written in a runbook.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def safe(self) -> bool:
        """GET and HEAD change nothing: safe to repeat on a timer. Any other method (the v1
        deprecation probe POSTs a test import) runs only when a person signs its step."""
        return self.method in ("GET", "HEAD")


@frozen
class Query:
    """A source of rows: one SQL statement (kind "sql"), or a JSON HTTP endpoint (kind
    "http") whose response JSONPath turns into rows and columns."""

    id: str
    title: str
    file: Path  # resolved against the runbook's folder (an http query: the runbook itself)
    statement: int | None  # 1-based among the file's executable statements
    refresh_s: float
    sql: str = ""  # the chosen statement's text, filled by the loader
    help: str = ""  # from the comment block above the statement
    sql_line: int = 1  # where the statement starts in `file`, for mapping Postgres positions
    sql_col: int = 1
    # Columns the query reads that a database may lack (the real soulprint schema has no
    # pipeline_version), each with what adding it gives: without one the query WAITs
    # saying so, and `validate` warns instead of failing.
    needs: dict[str, str] = field(default_factory=dict)
    # What the session binds to $1, $2…: "rolled_back_at" is the latest rollback's time
    # (NULL before any), so a query can count what happened since.
    params: tuple[str, ...] = ()
    kind: Literal["sql", "http", "derived"] = "sql"
    # http: url and header values are templates of environment variables (see Probe)
    url: str = ""
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    timeout_s: float = 10.0
    rows: str | None = None  # JSONPath selecting the rows; None: the document is one row
    columns: dict[str, str] = field(default_factory=dict)  # column -> JSONPath in a row
    # http: column -> max | min | sum | count over every match of its JSONPath (Render's
    # memory answers one series per instance: the busiest is the max of their last values)
    reduce: dict[str, str] = field(default_factory=dict)
    # derived: the queries it reads, and column -> its expression over their columns
    derived_from: tuple[str, ...] = ()
    expressions: dict[str, Expression] = field(default_factory=dict)

    def describe(self) -> str:
        """What the query fetches, as text: SQL, the request and the JSONPaths, or the
        expressions. A change to it starts a new evidence run."""
        if self.kind == "sql":
            return self.sql
        if self.kind == "derived":
            return "derived " + ", ".join(f"{k}={e.text}" for k, e in self.expressions.items())
        columns = ", ".join(
            f"{k}={v}" + (f" reduce={self.reduce[k]}" if k in self.reduce else "")
            for k, v in self.columns.items()
        )
        body = "" if self.json is None else f" json={self.json!r}"
        return f"{self.method} {self.url}{body} rows={self.rows or '$'} columns={columns}"


# Which row a comparison reads: (column, value) pairs, the first row whose columns equal
# them all (`row = { pipeline_version = "v2" }`), or a 1-based row number (`row = 3`).
RowSelector = tuple[tuple[str, str | int | float | bool], ...] | int


@frozen
class Against:
    """The other side of a two-sample comparison: another row of the same query, or the
    same query's result in a stage's exit snapshot (`baseline`: a stage id or "previous")."""

    row: RowSelector | None = None
    baseline: str | None = None


@frozen
class Distribution:
    """A histogram: one row per bucket, in order (fastest first), with a count column."""

    bucket: str
    count: str


@frozen
class NewRows:
    """A set: rows whose `key` was not among the baseline's."""

    key: str


@frozen
class Trend:
    """The slope of a column over a window of the evidence (Theil–Sen, in the column's units
    per hour), compared with `slope`: "no upward trend in memory over 12 h"."""

    over_s: float
    op: Op
    slope: float


@frozen
class Comparison:
    """A value from a query's first row (or its row count) compared against a threshold.

    With `successes` and `trials` the comparison is judged over the Wilson score interval
    of successes/trials at `confidence`, not over the point value alone. `row` picks
    another row than the first.

    With `against` it compares two samples: `value` is then the boundary on the difference
    (this − other), −margin or +margin as `boundary` above sets it (a gate and its
    negated trigger share it). `distribution` compares a histogram with the baseline's
    (`value` bounds Cliff's δ); `new_rows` counts keys the baseline did not have (`value`
    bounds the count). `trend` judges the column's slope over the evidence instead of its
    value (`op` and `value` are then the trend's).
    """

    query: str
    op: Op
    value: float
    column: str | None = None
    row_count: bool = False
    successes: str | None = None
    trials: str | None = None
    confidence: float | None = None
    row: RowSelector | None = None
    against: Against | None = None
    margin: float = 0.0
    distribution: Distribution | None = None
    new_rows: NewRows | None = None
    trend: Trend | None = None


@frozen
class Gate:
    id: str
    check: Comparison
    title: str = ""
    optional: bool = False  # does not count while its query lacks a column it `needs`
    # Where the gate is written in the runbook (a stage's, or a gate set's that stages use),
    # so a problem found later (a column the query lacks) is placed where it can be fixed.
    where: tuple[str | int, ...] = ()


@frozen
class Escalate:
    """A trigger whose condition has held this long, by the evidence, is judged at this
    severity ("extend monitoring; if it persists > 6 h, roll back")."""

    after_s: float
    severity: Severity


@frozen
class Trigger:
    """A rollback trigger: a comparison on a query, or (kind "manual") raised and cleared by
    people for what no query sees (user complaints, OOMs, data corruption)."""

    id: str
    check: Comparison | None  # None: a manual trigger
    severity: Severity = "critical"
    title: str = ""
    for_s: float = 0.0  # the condition must hold this long, by the evidence, to fire
    respond_within_s: float | None = None  # high: the deadline the alarm shows
    kind: Literal["query", "manual"] = "query"
    stages: tuple[str, ...] = ()  # live only in these stages; () every stage
    escalate: Escalate | None = None

    def live_in(self, stage_id: str) -> bool:
        return not self.stages or stage_id in self.stages


@frozen
class Step:
    id: str
    text: str
    probe: str | None = None
    after_s: float | None = None  # cannot be signed before the stage has held this long
    needs: tuple[str, ...] = ()  # gates that must have been PASS over `after`
    note_required: bool = False  # the sign-off must say something ("what was fixed")


@frozen
class Stage:
    id: str
    title: str
    percent: int
    hold_s: float = 0.0
    steps: tuple[Step, ...] = ()
    gates: tuple[Gate, ...] = ()
    max_gap_s: float = 3600.0  # a longer gap between two evaluations restarts the hold
    checkpoint_s: float | None = None  # snapshot every query this often (and at entry/exit)
    auto_rollback: tuple[str, ...] = ()  # critical triggers the watcher rolls back on
    use: tuple[str, ...] = ()  # the gate sets whose gates are in `gates` (said, not re-read)


@frozen
class Rollback:
    """What must be done after any rollback before the next advance (the runbook's
    `[rollback]`): steps to sign and gates that must pass, shown from a rollback until the
    next advance, which needs them all."""

    title: str = "After a rollback"
    steps: tuple[Step, ...] = ()
    gates: tuple[Gate, ...] = ()


@frozen
class Notify:
    """Where to tell people: a Slack-compatible incoming webhook whose URL (a secret) lives
    in the environment variable `url_env`."""

    kind: Literal["webhook"]
    url_env: str


@frozen
class Runbook:
    path: Path
    title: str
    version: int
    database: Database
    journal_path: Path
    flag: Flag
    probes: dict[str, Probe]
    queries: dict[str, Query]
    stages: tuple[Stage, ...]
    triggers: tuple[Trigger, ...]
    notify: tuple[Notify, ...] = ()
    rollback: Rollback | None = None
    # A file holding the journal's key (resolved; `~` expanded); CUTOVER_JOURNAL_KEY wins.
    journal_key_file: Path | None = None
    gatesets: dict[str, tuple[Gate, ...]] = field(default_factory=dict)
    store: StateStore = field(default_factory=StateStore)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)

    def stage_index(self, stage_id: str) -> int:
        return [s.id for s in self.stages].index(stage_id)
