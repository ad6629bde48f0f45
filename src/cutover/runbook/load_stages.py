"""Loading [[stages]] (their steps and gates), [[triggers]] and [rollback]: ids unique, every
query, probe and trigger they name known, auto_rollback armed only for critical triggers."""

from __future__ import annotations

from typing import Any

from cutover.runbook import tomlpos
from cutover.runbook.keys import (
    ESCALATE,
    GATE,
    GATESET,
    ID,
    MANUAL_TRIGGER,
    ROLLBACK,
    SEVERITIES,
    STAGE,
    STEP,
    TRIGGER,
    TRIGGER_KINDS,
)
from cutover.runbook.load_comparisons import read_comparison
from cutover.runbook.model import (
    PREVIOUS,
    Comparison,
    Escalate,
    Gate,
    Probe,
    Query,
    Rollback,
    Stage,
    Step,
    Trigger,
)
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
            critical = trigger is not None and (
                trigger.severity == "critical"
                or (trigger.escalate is not None and trigger.escalate.severity == "critical")
            )
            if trigger is None:
                unknown_key(r, where, "trigger", trigger_id, by_id)
            elif trigger.kind == "manual" or not critical:
                r.problem(
                    where,
                    f"auto_rollback may arm critical query triggers only (or ones that "
                    f"escalate to critical); {trigger_id} is "
                    f"{'manual' if trigger.kind == 'manual' else trigger.severity}",
                    at_value=True,
                )
            elif isinstance(item.get("id"), str) and not trigger.live_in(item["id"]):
                r.problem(
                    where,
                    f"{trigger_id} is live only in {', '.join(trigger.stages)}: it cannot "
                    f"fire in {item['id']}, so arming it there would do nothing",
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


def read_gatesets(r: Reader, raw: Any, queries: dict[str, Query]) -> dict[str, tuple[Gate, ...]]:
    """`[gatesets.steady]` with `[[gatesets.steady.gates]]`: gates said once, used by many
    stages (`use = ["steady"]`)."""
    sets: dict[str, tuple[Gate, ...]] = {}
    if not isinstance(raw, dict):
        return sets
    for name, item in raw.items():
        path = ("gatesets", name)
        what = f"[gatesets.{name}]"
        table = r.table(item, path, GATESET, what=what)
        if not ID.match(name):
            r.problem(path, f"gate set id {name!r} must be lower-case letters, digits, _ or -")
        if not r.require(table, item, path, "gates", what):
            continue
        sets[name] = read_gates(r, table["gates"], path, queries, what=f"[[gatesets.{name}.gates]]")
    return sets


def with_sets(
    r: Reader,
    table: dict,
    path: tuple,
    own: tuple[Gate, ...],
    gatesets: dict[str, tuple[Gate, ...]],
) -> tuple[tuple[Gate, ...], tuple[str, ...]]:
    """A stage's gates: those of the sets it uses, in order, each replaced by the stage's
    own gate of the same id; then the stage's other gates."""
    if "use" not in table:
        return own, ()
    names = read_ids(r, table["use"], (*path, "use"), "use")
    mine = {g.id: g for g in own}
    merged: dict[str, Gate] = {}
    for name in names:
        if name not in gatesets:
            unknown_key(r, (*path, "use"), "gate set", name, gatesets)
            continue
        for gate in gatesets[name]:
            if gate.id in merged and merged[gate.id] is not mine.get(gate.id):
                r.problem(
                    (*path, "use"),
                    f"gate {gate.id!r} is in more than one of the sets this stage uses; "
                    "give the stage its own gate of that id to say which it means",
                    at_value=True,
                )
            merged[gate.id] = mine.get(gate.id, gate)
    for gate in own:
        merged.setdefault(gate.id, gate)
    return tuple(merged.values()), names


def check_set_baselines(r: Reader, stages: tuple[Stage, ...]) -> None:
    """A gate from a set compares with a stage before the one using it (as a stage's own
    gate must, see check_baselines), checked for every stage that uses it."""
    ids = [s.id for s in stages]
    for index, stage in enumerate(stages):
        for gate in stage.gates:
            against = gate.check.against
            if not gate.where or gate.where[0] != "gatesets" or against is None:
                continue
            name = against.baseline
            where = (*gate.where, "against", "baseline")
            if name is None or (name == PREVIOUS and index > 0):
                continue
            if name == PREVIOUS:
                r.problem(
                    where, f"stage {stage.id} uses it, and has no previous stage", at_value=True
                )
            elif name not in ids:
                unknown_key(r, where, "stage", name, dict.fromkeys(ids))
            elif ids.index(name) >= index:
                r.problem(
                    where,
                    f"stage {stage.id} uses it, and {name}'s exit cannot exist the first time "
                    f"through {stage.id}",
                    at_value=True,
                )


def read_stages(
    r: Reader,
    raw: Any,
    queries: dict[str, Query],
    probes: dict[str, Probe],
    gatesets: dict[str, tuple[Gate, ...]] | None = None,
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
        own = read_gates(r, item.get("gates", []) if isinstance(item, dict) else [], path, queries)
        gates, use = with_sets(r, table, path, own, gatesets or {})
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
                    use=use,
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
                Gate(
                    id=table["id"],
                    check=check,
                    title=table.get("title", ""),
                    optional=optional,
                    where=path,
                )
            )
    return tuple(gates)


def read_triggers(
    r: Reader, raw: Any, queries: dict[str, Query], stage_ids: tuple[str, ...] = ()
) -> list[Trigger]:
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
        scope = read_scope(r, table, path, stage_ids)
        escalate = read_escalate(r, table, item, path, severity)
        if isinstance(item, dict) and "escalate" in item and escalate is None:
            ok = False
        if ok and scope is not None:
            triggers.append(
                Trigger(
                    id=table["id"],
                    check=check,
                    severity=severity,
                    title=table.get("title", ""),
                    for_s=table.get("for", 0.0),
                    respond_within_s=respond,
                    kind=kind,
                    stages=scope,
                    escalate=escalate,
                )
            )
    return triggers


def read_scope(
    r: Reader, table: dict, path: tuple, stage_ids: tuple[str, ...]
) -> tuple[str, ...] | None:
    """`stages = ["canary", "ramp"]`: the stages a trigger is live in; None after a problem."""
    if "stages" not in table:
        return ()
    where = (*path, "stages")
    names = read_ids(r, table["stages"], where, "stages")
    if not names:
        r.problem(where, "stages names at least one stage (leave it out for every stage)")
        return None
    known = dict.fromkeys(stage_ids)
    bad = [n for n in names if n not in known]
    for name in bad:
        unknown_key(r, where, "stage", name, known)
    return None if bad else names


def read_escalate(r: Reader, table: dict, raw: Any, path: tuple, severity: str) -> Escalate | None:
    """`escalate = { after = "6h", severity = "critical" }`: held this long, by the
    evidence, the trigger is judged at that severity (a rollback, armable)."""
    if "escalate" not in table:
        return None
    where = (*path, "escalate")
    parts = r.table(table["escalate"], where, ESCALATE, what="escalate")
    given = raw.get("escalate") if isinstance(raw, dict) else None
    if isinstance(given, dict) and any(key not in parts for key in given):
        return None  # an unknown key or a wrong type, already said
    if not all([r.require(parts, given, where, k, "escalate") for k in ("after", "severity")]):
        return None
    to = parts["severity"]
    if to not in SEVERITIES:
        r.problem(
            (*where, "severity"),
            f"severity {to!r} is not one of {', '.join(SEVERITIES)}",
            at_value=True,
        )
        return None
    if SEVERITIES.index(to) >= SEVERITIES.index(severity):
        r.problem(
            (*where, "severity"),
            f"escalate goes up: from {severity} to a more urgent severity, not {to}",
            at_value=True,
        )
        return None
    if parts["after"] <= 0:
        r.problem((*where, "after"), "escalate after must be longer than 0s", at_value=True)
        return None
    return Escalate(after_s=parts["after"], severity=to)
