"""Load `runbook.toml` into typed objects, reporting every mistake with file:line:col."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cutover.runbook import columns, textfile, tomlpos
from cutover.runbook.keys import JOURNAL, SUPPORTED_VERSIONS, TOP
from cutover.runbook.load_comparisons import check_baselines
from cutover.runbook.load_platform import read_database, read_flag, read_notify, read_probes
from cutover.runbook.load_queries import read_queries
from cutover.runbook.load_stages import (
    check_auto_rollback,
    check_set_baselines,
    read_gatesets,
    read_rollback,
    read_stages,
    read_triggers,
)
from cutover.runbook.load_store import read_store
from cutover.runbook.model import (
    Runbook,
)
from cutover.runbook.problems import Problem, ProblemsFound
from cutover.runbook.reader import Reader
from cutover.runbook.vetted import MEMO


def load(path: Path | str, *, shown_as: str | None = None) -> Runbook:
    """Load and validate a runbook; raise ProblemsFound listing every problem found."""
    path = Path(path)
    shown = shown_as or str(path)
    try:
        text = textfile.read_text(path)
    except FileNotFoundError:
        raise ProblemsFound(
            [Problem(shown, 1, 1, "no runbook here; pass --runbook PATH or set CUTOVER_RUNBOOK")]
        ) from None
    except textfile.NotUtf8 as exc:
        raise ProblemsFound(
            [Problem(shown, exc.line, exc.col, f"cannot read the runbook: {exc}")]
        ) from None
    except OSError as exc:
        raise ProblemsFound([Problem(shown, 1, 1, f"cannot read the runbook: {exc}")]) from None
    with MEMO.batch():  # what this load parses and vets is remembered in one write
        try:
            data = parsed_toml(text)
        except tomllib.TOMLDecodeError as exc:
            line, col, message = tomlpos.decode_error(exc, text)
            raise ProblemsFound([Problem(shown, line, col, f"not valid TOML: {message}")]) from None
        reader = Reader(path, text, shown)
        runbook = _build(reader, data, path.resolve())
    if reader.problems:
        raise ProblemsFound(
            sorted(reader.problems, key=lambda p: (p.file != shown, p.file, p.line, p.col))
        )
    assert runbook is not None
    return runbook


TOML_KEPT = 4  # runbooks whose TOML the memo keeps (a demo's, a real one, a copy or two)


def parsed_toml(text: str) -> dict[str, Any]:
    """tomllib.loads(text), remembered in the vetted memo as JSON: tomllib is pure Python,
    ~8 ms of every start for the shipped runbook, and reading it back as JSON well under 1
    ms. Kept only when JSON holds the very same data (no dates or times, no NaN), and as
    JSON text, so that each load reads objects of its own."""
    kept = MEMO.recall("toml", text)
    if isinstance(kept, dict) and isinstance(kept.get("json"), str):
        try:
            data = json.loads(kept["json"])
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    data = tomllib.loads(text)
    try:
        dumped = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError):
        return data  # a date or a time: read afresh each time
    if json.loads(dumped) == data:  # the few newest runbooks: each edit is a new text
        MEMO.keep("toml", text, {"kind": "toml", "json": dumped}, newest=TOML_KEPT)
    return data


def _build(r: Reader, data: dict, path: Path) -> Runbook | None:
    top = r.table(data, (), TOP, what="the runbook")
    for key in ("version", "title", "flag", "stages"):
        r.require(top, data, (), key, "the runbook")
    version = top.get("version", 1)
    if "version" in top and version not in SUPPORTED_VERSIONS:
        r.problem(
            ("version",),
            f"runbook version {version} is not supported; this cutover "
            f"reads version {', '.join(map(str, SUPPORTED_VERSIONS))}",
            at_value=True,
        )
    folder = path.parent

    database = read_database(r, data.get("database", {}))
    journal = r.table(data.get("journal", {}), ("journal",), JOURNAL, what="[journal]")
    journal_path = folder / journal.get("path", ".cutover/journal.jsonl")
    key_file = journal.get("key_file")
    journal_key_file = folder / Path(key_file).expanduser() if key_file else None
    store = read_store(r, data.get("store", {}), database, str(top.get("title", "")))
    probes = read_probes(r, top.get("probes", {}))
    queries = read_queries(r, top.get("queries", {}), folder)
    flag = read_flag(r, data.get("flag"), folder, queries) if "flag" in data else None
    gatesets = read_gatesets(r, top.get("gatesets", {}), queries)
    stages = read_stages(r, data.get("stages", []), queries, probes, gatesets)
    stage_ids = tuple(
        s["id"]
        for s in top.get("stages", [])
        if isinstance(s, dict) and isinstance(s.get("id"), str)
    )
    triggers = tuple(read_triggers(r, data.get("triggers", []), queries, stage_ids))
    check_auto_rollback(r, data.get("stages", []), stages, triggers)
    check_baselines(r, data.get("stages", []), data.get("triggers", []))
    check_set_baselines(r, stages)
    notify = read_notify(r, data.get("notify", []))
    rollback = (
        read_rollback(r, top["rollback"], stages, queries, probes) if "rollback" in top else None
    )
    if r.problems or flag is None:
        return None
    runbook = Runbook(
        path=path,
        title=top["title"],
        version=version,
        database=database,
        journal_path=journal_path,
        journal_key_file=journal_key_file,
        flag=flag,
        probes=probes,
        queries=queries,
        stages=stages,
        triggers=triggers,
        notify=notify,
        rollback=rollback,
        gatesets=gatesets,
        store=store,
    )
    # A derived query's columns are known now: a gate reading one it lacks is a mistake here,
    # not a WAIT at run time.
    for use in columns.uses(runbook):
        query = runbook.queries[use.query]
        if query.kind == "derived" and use.column not in query.expressions:
            r.problem(
                use.path,
                f"{use.what} reads {use.key} {use.column!r}, but derived query {query.id!r} "
                f"has no such column (it has {', '.join(query.expressions)})",
                at_value=True,
            )
    return runbook


def resolve_runbook_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """--runbook, then $CUTOVER_RUNBOOK, then ./runbook.toml (the CLI contract)."""
    if cli_value:
        return Path(cli_value)
    if environ.get("CUTOVER_RUNBOOK"):
        return Path(environ["CUTOVER_RUNBOOK"])
    return Path("runbook.toml")
