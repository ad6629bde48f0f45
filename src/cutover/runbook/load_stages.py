"""Loading [[stages]] (their steps and gates), [[triggers]] and [rollback]: ids unique, every
query, probe and trigger they name known, auto_rollback armed only for critical triggers."""

from __future__ import annotations

from typing import Any

from cutover.runbook import tomlpos
from cutover.runbook.keys import (
    GATE,
    MANUAL_TRIGGER,
    ROLLBACK,
    SEVERITIES,
    STAGE,
    STEP,
    TRIGGER,
    TRIGGER_KINDS,
)
from cutover.runbook.load_comparisons import read_comparison
from cutover.runbook.model import Comparison, Gate, Probe, Query, Rollback, Stage, Step, Trigger
from cutover.runbook.reader import Reader, unknown_key


def read_rollback(
    r: Reader,
    raw: dict,
    stages: tuple[Stage, ...],
    queries: dict[str, Query],
    probes: dict[str, Probe],
) -> Rollback:
    """`[rollback]`: steps and gates, the same shapes as a stage's, for after any rollback."""
    path = ("rollback",)
    table = r.table(raw, path, ROLLBACK, what="[rollback]")
    steps = read_steps(r, raw.get("steps", []), path, probes, what="[[rollback.steps]]")
    gates = read_gates(r, raw.get("gates", []), path, queries, what="[[rollback.gates]]")
    gate_ids = {g.id for g in gates}
    for index, step in enumerate(steps):
        for needed in step.needs:
            if needed not in gate_ids:
                unknown_key(r, (*path, "steps", index, "needs"), "rollback gate", needed, gate_ids)
    # `cutover signoff STEP` must know which step it signs.
    for index, step in enumerate(steps):
        clash = next((s.id for s in stages if any(x.id == step.id for x in s.steps)), None)
        if clash:
            r.problem(
                (*path, "steps", index, "id"),
                f"rollback step id {step.id!r} is also a step of stage {clash!r}: "
                "`cutover signoff` could not tell them apart",
                at_value=True,
            )
    return Rollback(title=table.get("title", "After a rollback"), steps=steps, gates=gates)


def read_ids(r: Reader, raw: Any, path: tuple, what: str) -> tuple[str, ...]:
    """A list of ids (strings); a problem for anything else."""
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        r.problem(path, f'{what} must be a list of ids, like ["success"]', at_value=True)
        return ()
    return tuple(raw)


def check_auto_rollback(
    r: Reader, raw: Any, stages: tuple[Stage, ...], triggers: tuple[Trigger, ...]
) -> None:
    """Only critical query triggers may arm the watcher's rollback: a human-raised trigger
    is a human's to act on, and a lesser severity is not an emergency."""
    by_id = {t.id: t for t in triggers}
    for path, item in r.items(raw, ("stages",), "stage"):
        if not isinstance(item, dict) or "auto_rollback" not in item:
            continue
        for trigger_id in read_ids(
            r, item["auto_rollback"], (*path, "auto_rollback"), "auto_rollback"
        ):
            trigger = by_id.get(trigger_id)
            where = (*path, "auto_rollback")
            if trigger is None:
                unknown_key(r, where, "trigger", trigger_id, by_id)
            elif trigger.kind == "manual" or trigger.severity != "critical":
                r.problem(
                    where,
                    f"auto_rollback may arm critical query triggers only; {trigger_id} is "
                    f"{'manual' if trigger.kind == 'manual' else trigger.severity}",
                    at_value=True,
                )


def check_unique(
    r: Reader, seen: dict[str, tuple], value: str | None, path: tuple, what: str
) -> None:
    if value is None:
        return
    if value in seen:
        first = tomlpos.nearest(r.positions, seen[value])
        r.problem(
            (*path, "id"),
            f"duplicate {what} id {value!r} (first at line {first.line})",
            at_value=True,
        )
    else:
        seen[value] = path


def read_stages(
    r: Reader, raw: Any, queries: dict[str, Query], probes: dict[str, Probe]
) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    seen: dict[str, tuple] = {}
    if isinstance(raw, list) and not raw:
        r.problem(("stages",), "the runbook needs at least one [[stages]]")
    previous: tuple[int, tuple] | None = None
    for path, item in r.items(raw, ("stages",), "stage"):
        table = r.table(item, path, STAGE, what="[[stages]]")
        ok = all([r.require(table, item, path, key, "[[stages]]") for key in ("id", "percent")])
        stage_id = r.ident(table, path, "stage")
        check_unique(r, seen, stage_id, path, "stage")
        percent = table.get("percent")
        if percent is not None:
            if not 0 <= percent <= 100:
                r.problem((*path, "percent"), f"percent {percent} is outside 0–100", at_value=True)
                ok = False
            elif previous is not None and percent < previous[0]:
                r.problem(
                    (*path, "percent"),
                    f"percent {percent} is below the previous stage's "
                    f"{previous[0]}; stages must not decrease (roll back instead)",
                    at_value=True,
                )
                ok = False
            previous = (percent, path)
        steps = read_steps(r, item.get("steps", []) if isinstance(item, dict) else [], path, probes)
        gates = read_gates(
            r, item.get("gates", []) if isinstance(item, dict) else [], path, queries
        )
        gate_ids = {g.id for g in gates}
        for index, step in enumerate(steps):
            for needed in step.needs:
                if needed not in gate_ids:
                    unknown_key(r, (*path, "steps", index, "needs"), "gate", needed, gate_ids)
                    ok = False
        max_gap = table.get("max_gap", 3600.0)
        if max_gap <= 0:
            r.problem((*path, "max_gap"), "max_gap must be longer than 0s", at_value=True)
            ok = False
        checkpoint = table.get("checkpoint")
        if checkpoint is not None and checkpoint < 60:
            r.problem((*path, "checkpoint"), "checkpoint must be at least 1m", at_value=True)
            ok = False
        if ok and stage_id:
            stages.append(
                Stage(
                    id=stage_id,
                    title=table.get("title", stage_id),
                    percent=percent,
                    hold_s=table.get("hold", 0.0),
                    steps=steps,
                    gates=gates,
                    max_gap_s=max_gap,
                    checkpoint_s=checkpoint,
                    auto_rollback=tuple(
                        x for x in table.get("auto_rollback", []) if isinstance(x, str)
                    ),
                )
            )
    return tuple(stages)


def read_steps(
    r: Reader,
    raw: Any,
    stage_path: tuple,
    probes: dict[str, Probe],
    what: str = "[[stages.steps]]",
) -> tuple[Step, ...]:
    steps: list[Step] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, (*stage_path, "steps"), "step"):
        table = r.table(item, path, STEP, what=what)
        ok = all([r.require(table, item, path, key, what) for key in ("id", "text")])
        step_id = r.ident(table, path, "step")
        check_unique(r, seen, step_id, path, "step")
        probe = table.get("probe")
        if probe is not None and probe not in probes:
            unknown_key(r, (*path, "probe"), "probe", probe, probes)
            ok = False
        needs = read_ids(r, table["needs"], (*path, "needs"), "needs") if "needs" in table else ()
        if needs and "after" not in table:
            r.problem((*path, "needs"), "needs goes with after (how long they must have held)")
            ok = False
        if ok:
            steps.append(
                Step(
                    id=step_id,
                    text=table["text"],
                    probe=probe,
                    after_s=table.get("after"),
                    needs=needs,
                    note_required=table.get("note_required", False),
                )
            )
    return tuple(steps)


def read_gates(
    r: Reader,
    raw: Any,
    stage_path: tuple,
    queries: dict[str, Query],
    what: str = "[[stages.gates]]",
) -> tuple[Gate, ...]:
    gates: list[Gate] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, (*stage_path, "gates"), "gate"):
        table, check = read_comparison(r, item, path, GATE, what, queries)
        check_unique(r, seen, table.get("id"), path, "gate")
        optional = bool(table.get("optional", False))
        query = queries.get(table.get("query", ""))
        if optional and query is not None and not query.needs:
            r.problem(
                (*path, "optional"),
                "optional means: does not count while its query lacks a column it `needs`; "
                f"query {table.get('query')!r} names no `needs`",
                at_value=True,
            )
            continue
        if check is not None:
            gates.append(
                Gate(id=table["id"], check=check, title=table.get("title", ""), optional=optional)
            )
    return tuple(gates)


def read_triggers(r: Reader, raw: Any, queries: dict[str, Query]) -> list[Trigger]:
    triggers: list[Trigger] = []
    seen: dict[str, tuple] = {}
    for path, item in r.items(raw, ("triggers",), "trigger"):
        kind = item.get("kind", "query") if isinstance(item, dict) else "query"
        if kind not in TRIGGER_KINDS:
            r.problem(
                (*path, "kind"),
                f"trigger kind {kind!r} is not known; use one of {', '.join(TRIGGER_KINDS)}",
                at_value=True,
            )
            continue
        check: Comparison | None = None
        if kind == "manual":
            # Raised and cleared by people (`cutover raise ID --note`): no query to read.
            table = r.table(item, path, MANUAL_TRIGGER, what="a manual [[triggers]]")
            ok = r.require(table, item, path, "id", "[[triggers]]")
            r.ident(table, path, "trigger")
        else:
            table, check = read_comparison(r, item, path, TRIGGER, "[[triggers]]", queries)
            ok = check is not None
        check_unique(r, seen, table.get("id"), path, "trigger")
        severity = table.get("severity", "critical")
        if severity not in SEVERITIES:
            r.problem(
                (*path, "severity"),
                f"severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                at_value=True,
            )
            continue
        respond = table.get("respond_within")
        if respond is not None and severity != "high":
            r.problem(
                (*path, "respond_within"),
                f"respond_within is the deadline of a high trigger; this one is {severity}",
                at_value=True,
            )
            ok = False
        if ok:
            triggers.append(
                Trigger(
                    id=table["id"],
                    check=check,
                    severity=severity,
                    title=table.get("title", ""),
                    for_s=table.get("for", 0.0),
                    respond_within_s=respond,
                    kind=kind,
                )
            )
    return triggers
