"""The keys each table of runbook.toml may hold, with their types and what each means: one place
that the loader checks against (unknown keys get a "did you mean") and that `cutover schema`
turns into the editor's JSON Schema, so the two cannot disagree."""

from __future__ import annotations

import re
from typing import Any

SUPPORTED_VERSIONS = (1,)


OPS = ("<", "<=", ">", ">=", "==", "!=")


SEVERITIES = ("critical", "high", "medium")


FLAG_KINDS = ("vercel", "file", "command")


ROLLBACK_WAYS = ("instant", "redeploy")  # [flag] rollback on Vercel


ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


MIN_STATEMENT_TIMEOUT_S = 0.001


MAX_STATEMENT_TIMEOUT_S = 24 * 86400.0


# What each table may hold. A type tuple means "any of these"; `Duration` is a string
# that must parse as one. Unknown keys are errors with a "did you mean".
Duration = "duration"


Row = "row"  # a table of column = value pairs, or a 1-based row number


Number = (int, float)


TableOrArray = "table or array"  # a JSON body; a query's `needs`


StringOrTable = "string or table"  # an http query's column: a JSONPath, or { path, reduce }


class Keys(dict[str, Any]):
    """One table's keys: key → type (what the loader checks), and `docs`: key → what it
    means (what the schema and an editor show). Built from key → (type, doc)."""

    def __init__(self, entries: dict[str, tuple[Any, str]]):
        super().__init__({key: kind for key, (kind, _) in entries.items()})
        self.docs: dict[str, str] = {key: doc for key, (_, doc) in entries.items()}

    def plus(self, entries: dict[str, tuple[Any, str]]) -> Keys:
        """These keys and more (a gate is a comparison that may be optional)."""
        return Keys({**{k: (t, self.docs[k]) for k, t in self.items()}, **entries})

    def only(self, *names: str) -> Keys:
        """Some of these keys, with their docs (a manual trigger: no query to compare)."""
        return Keys({k: (self[k], self.docs[k]) for k in names})


TOP = Keys(
    {
        "version": (int, "The runbook format's version: 1."),
        "title": (str, "What is being cut over, shown at the top of every screen."),
        "database": (dict, "The Postgres the SQL queries read."),
        "journal": (dict, "Where the journal (the record of every action) lives."),
        "store": (dict, 'Where the record lives: "files" beside the journal, or "postgres".'),
        "flag": (dict, "Where the rollout percent lives, and how to read it back."),
        "probes": (dict, "HTTP checks a step runs before it is signed, by id."),
        "queries": (dict, "The validation queries, by id: SQL, HTTP or derived."),
        "gatesets": (dict, "Gates said once and used by many stages (`use = [...]`), by id."),
        "stages": (list, "The stages, in order: percent, hold, steps, gates."),
        "triggers": (list, "Rollback triggers: what calls for rolling back, and how urgently."),
        "notify": (list, "Where to tell people (Slack-compatible webhooks)."),
        "rollback": (dict, "What must be done after any rollback before the next advance."),
    }
)


ROLLBACK = Keys(
    {
        "title": (str, "The checklist's title."),
        "steps": (list, "Sign-offs after a rollback (the shape of a stage's steps)."),
        "gates": (list, "Gates that must pass after a rollback (the shape of a stage's)."),
    }
)


QUERY_PARAMS = ("rolled_back_at",)


DATABASE = Keys(
    {
        "dsn_env": (str, "The environment variable holding the DSN (never the DSN itself)."),
        "statement_timeout": (Duration, "A query that takes longer is a WAIT, not a hang."),
        "pooler": (str, '"session" (default) or "transaction" (no prepared statements).'),
    }
)


JOURNAL = Keys(
    {
        "path": (str, "The journal file, relative to the runbook's folder."),
        "key_file": (str, "A file holding the journal's HMAC key (CUTOVER_JOURNAL_KEY wins)."),
    }
)


STORE_KINDS = ("files", "postgres")


STORE = Keys(
    {
        "kind": (str, '"files" (the default: beside the journal) or "postgres" (team mode).'),
        "dsn_env": (
            str,
            "The environment variable holding the state store's DSN: a writable role on its "
            "own schema, never the read-only role of [database].",
        ),
        "schema": (str, 'The Postgres schema holding the record (default "cutover").'),
        "cutover": (
            str,
            "This cutover's id in the store: one schema holds many cutovers (default: the "
            "title, as lowercase words joined by -).",
        ),
    }
)


FLAG_COMMON = Keys(
    {
        "kind": (str, "vercel | file | command"),
        "observed": (dict, "The query and column showing the share traffic actually gets."),
    }
)


FLAG_BY_KIND = {
    "vercel": Keys(
        {
            "project": (str, "The Vercel project."),
            "key": (str, "The environment variable holding the percent."),
            "target": (str, "The Vercel target (default production)."),
            "token_env": (str, "The environment variable holding the Vercel token."),
            "team_id": (str, "The Vercel team, when the project lives under one."),
            "redeploy": (bool, "Redeploy after a change (an env change reaches only new ones)."),
            "rollback": (
                str,
                '"instant" (default): re-point production at a deployment known to carry '
                'the target, no build; "redeploy": set the variable and build.',
            ),
            "token_file": (str, "A file holding the token, re-read at every attempt."),
        }
    ),
    "file": Keys({"path": (str, "The file holding the percent, relative to the runbook.")}),
    "command": Keys(
        {
            "get": (str, "A command printing the percent."),
            "set": (str, "A command setting it; must contain {percent}."),
            "timeout": (Duration, "How long either command may take (default 30s)."),
            "env": (list, "The only environment variables the commands see."),
            "rollback": (str, "A command a rollback runs first (a platform's own instant one)."),
        }
    ),
}


OBSERVED = Keys(
    {
        "query": (str, "The query showing the observed share."),
        "column": (str, "Its column holding the share, in percent."),
    }
)


PROBE = Keys(
    {
        "url": (str, "The URL; ${NAME} and ${NAME:-default} come from the environment."),
        "method": (str, "GET (default), or POST when a `json` body is given, or another."),
        "expect_status": (int, "The status it must answer (default 200)."),
        "expect_json": (dict, "Members the JSON body must hold, with their values."),
        "expect_headers": (dict, "Headers it must send: an exact value, or true (present)."),
        "deprecation": (bool, "Judge Deprecation, Sunset and Link as a retiring endpoint's."),
        "timeout": (Duration, "How long the request may take (default 10s)."),
        "json": (TableOrArray, "A JSON body to send."),
        "headers": (dict, "Request headers: values name environment variables, never secrets."),
    }
)


QUERY = Keys(
    {
        "title": (str, "The panel's title (default: the comment above the statement)."),
        "file": (str, "The .sql file, relative to the runbook."),
        "statement": (int, "Which executable statement of the file (1-based)."),
        "refresh": (Duration, "How often it runs (default 30s)."),
        "needs": (TableOrArray, "Columns the database may lack; without one the query WAITs."),
        "params": (list, 'What $1, $2… are bound to: "rolled_back_at".'),
        "kind": (str, "sql (default) | http | derived"),
    }
)


HTTP_QUERY = Keys(
    {
        "title": (str, "The panel's title."),
        "help": (str, "What the panel means, shown under it."),
        "kind": (str, '"http": a JSON endpoint as a query.'),
        "url": (str, "The URL; ${NAME} and ${NAME:-default} come from the environment."),
        "method": (str, "GET (default), or POST when a `json` body is given, or another."),
        "headers": (dict, "Request headers: values name environment variables, never secrets."),
        "json": (TableOrArray, "A JSON body to send."),
        "timeout": (Duration, "How long the request may take (default 10s)."),
        "rows": (str, "A JSONPath selecting the rows; without it the document is one row."),
        "columns": (
            dict,
            'column → a JSONPath within a row (its first match), or { path = "…", reduce = '
            '"max" } (max | min | sum | count over every match).',
        ),
        "refresh": (Duration, "How often it runs (default 30s)."),
    }
)


HTTP_COLUMN = Keys(
    {
        "path": (str, "A JSONPath within the row; it may match many values."),
        "reduce": (str, "max | min | sum | count over every match (true reads as 1)."),
    }
)


REDUCERS = ("max", "min", "sum", "count")


DERIVED_QUERY = Keys(
    {
        "title": (str, "The panel's title."),
        "help": (str, "What the panel means, shown under it."),
        "kind": (str, '"derived": computed from the latest results of other queries.'),
        "from": (list, "The queries it reads (SQL or http), by id."),
        "columns": (
            dict,
            "column → an expression over query.column names: numbers, + - * /, ( ), min, "
            "max. NULL, or division by zero, makes the column NULL (a WAIT).",
        ),
    }
)


QUERY_KINDS = ("sql", "http", "derived")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


STAGE = Keys(
    {
        "id": (str, "The stage's id (lower-case letters, digits, _ and -)."),
        "title": (str, "The stage's title."),
        "percent": (int, "The rollout percent of this stage, 0–100, never decreasing."),
        "hold": (Duration, "Every gate PASS, by the evidence, for this long to advance."),
        "steps": (list, "Sign-offs: manual, or checked by a probe."),
        "gates": (list, "Must hold to leave the stage; one with a gate set's id replaces it."),
        "use": (list, "Gate sets whose gates this stage has too, by id."),
        "max_gap": (Duration, "A longer gap between evaluations restarts the hold (default 1h)."),
        "checkpoint": (Duration, "Snapshot every query this often (and at entry and exit)."),
        "auto_rollback": (list, "Critical triggers the watcher may roll back on, by id."),
    }
)


GATESET = Keys(
    {
        "title": (str, "What the set is for."),
        "gates": (list, "The set's gates, the shape of a stage's."),
    }
)


STEP = Keys(
    {
        "id": (str, "The step's id: `cutover signoff ID`."),
        "text": (str, "What the person signing it confirms."),
        "probe": (str, "A probe that must pass before it is signed."),
        "after": (Duration, "It cannot be signed before the stage has held this long."),
        "needs": (list, "Gates that must have been PASS over `after`."),
        "note_required": (bool, "The sign-off must carry a note."),
    }
)


COMPARISON = Keys(
    {
        "id": (str, "The id (lower-case letters, digits, _ and -)."),
        "title": (str, "What it checks, in words."),
        "query": (str, "The query it reads."),
        "column": (str, "The column it reads (of the first row, or `row`)."),
        "row_count": (bool, "Compare the number of rows instead of a column."),
        "op": (str, "< <= > >= == !="),
        "value": (Number, "The threshold."),
        "successes": (str, "With trials: judge the Wilson interval of successes/trials."),
        "trials": (str, "With successes: judge the Wilson interval of successes/trials."),
        "confidence": (Number, "The intervals' confidence (default 0.95)."),
        "row": (Row, 'Which row: { column = "value" } or a row number.'),
        "against": (dict, 'The other side: { row = … } or { baseline = "stage" | "previous" }.'),
        "margin": (Number, "How far apart the two sides may be (percentage points)."),
        "distribution": (dict, "{ bucket, count }: a histogram against the baseline's."),
        "new_rows": (dict, "{ key }: keys the baseline did not have."),
        "trend": (dict, "{ over, op, slope }: the column's slope over the evidence."),
    }
)


AGAINST = Keys(
    {
        "row": (Row, "Another row of the same query."),
        "baseline": (str, 'A stage\'s exit snapshot: a stage id or "previous".'),
    }
)


DISTRIBUTION = Keys(
    {
        "bucket": (str, "The column naming each bucket (rows in order, fastest first)."),
        "count": (str, "The column counting each bucket."),
    }
)


NEW_ROWS = Keys({"key": (str, "The column whose values are compared as a set.")})


TREND = Keys(
    {
        "over": (Duration, "The window of evidence the slope is judged over."),
        "op": (str, "< <= > >= (the slope against `slope`)."),
        "slope": (Number, "The threshold, in the column's units per hour."),
    }
)


# A gate may be optional: it does not count while its query lacks a column it `needs`
# (the v2-row gate on a database without pipeline_version), and counts like any other once
# the column exists.
GATE = COMPARISON.plus(
    {"optional": (bool, "Does not count while its query lacks a column it `needs`.")}
)


TRIGGER = COMPARISON.plus(
    {
        "severity": (str, "critical (roll back now) | high (within respond_within) | medium"),
        "for": (Duration, "The condition must hold this long, by the evidence, to fire."),
        "respond_within": (Duration, "A high trigger's deadline once fired."),
        "kind": (str, "query (default) | manual (raised and cleared by people)."),
        "stages": (list, "Live only in these stages (default: every stage above 0 %)."),
        "escalate": (dict, "{ after, severity }: held this long, by the evidence, it becomes…"),
    }
)


ESCALATE = Keys(
    {
        "after": (Duration, "How long the condition must have held, by the evidence."),
        "severity": (str, "What it becomes: high or critical (above its own)."),
    }
)


MANUAL_TRIGGER = TRIGGER.only("id", "title", "severity", "respond_within", "kind")


NOTIFY = Keys(
    {
        "kind": (str, '"webhook" (Slack-compatible).'),
        "url_env": (str, "The environment variable holding the webhook URL (a secret)."),
    }
)


TRIGGER_KINDS = ("query", "manual")


TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "a table",
    list: "an array",
    float: "a number",
}


def type_name(expected: Any) -> str:
    if expected == Duration:
        return 'a duration string like "30s", "24h" or "7d"'
    if expected == Row:
        return 'a table like { pipeline_version = "v2" } or a row number like 3'
    if expected == TableOrArray:
        return "a table or an array"
    if expected == StringOrTable:
        return "a string or a table"
    if isinstance(expected, tuple):
        return "a number"
    return TYPE_NAMES.get(expected, expected.__name__)


def has_type(value: Any, expected: Any) -> bool:
    # bool is an int in Python but never a number in a runbook.
    if expected == Duration:
        return isinstance(value, str)
    if expected == Row:
        return isinstance(value, dict) or (isinstance(value, int) and not isinstance(value, bool))
    if expected == TableOrArray:
        return isinstance(value, dict | list)
    if expected == StringOrTable:
        return isinstance(value, str | dict)
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
