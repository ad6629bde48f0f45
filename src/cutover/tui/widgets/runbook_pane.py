"""The runbook pane: stages as a tree, each step with ✓ / ☐, signer, time, override and probe
result (past stages from their last visit in the journal); the current stage's line carries
its hold as the evidence judges it; manual triggers (raised by people) under their own node.
Built once from the runbook; later only labels change, so the cursor stays."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from cutover.record.state import CutoverState, SignOff
from cutover.runbook.durations import humanize
from cutover.runbook.model import Runbook
from cutover.sources.probes import ProbeResult
from cutover.tui.history import History
from cutover.tui.text import clean, clock_text

# The `stage` of a rollback checklist step's Ref: the checklist belongs to no stage.
CHECKLIST = "⟲ rollback"


@dataclass(frozen=True)
class Ref:
    kind: str  # "stage", "step", "probe" or "trigger" (then `step` is the trigger's id)
    stage: str  # a stage id, or CHECKLIST for a step of the rollback checklist
    step: str | None = None


class RunbookPane(Tree[Ref]):
    def __init__(self, runbook: Runbook) -> None:
        super().__init__(clean(runbook.title), id="runbook")
        self.runbook = runbook
        self.show_root = False
        self.guide_depth = 2
        self._stages: dict[str, TreeNode[Ref]] = {}
        self._steps: dict[tuple[str, str], TreeNode[Ref]] = {}
        self._probes: dict[tuple[str, str], TreeNode[Ref]] = {}
        self._triggers: dict[str, TreeNode[Ref]] = {}
        self._live: tuple[str, str, str | None] | None = None  # stage, hold, completed shown
        # The rollback checklist: at the top of the tree while it is open (from a rollback
        # to the next advance), signable with `s` like a stage's steps.
        self._checklist: TreeNode[Ref] | None = None
        self._checklist_steps: dict[str, TreeNode[Ref]] = {}
        self._trigger_shown: dict[str, tuple[bool, str]] = {}
        for stage in runbook.stages:
            node = self.root.add(stage.title, data=Ref("stage", stage.id), expand=False)
            self._stages[stage.id] = node
            for step in stage.steps:
                if step.probe:
                    leaf = node.add(step.text, data=Ref("step", stage.id, step.id), expand=True)
                    self._probes[(stage.id, step.id)] = leaf.add_leaf(
                        "", data=Ref("probe", stage.id, step.id)
                    )
                else:
                    leaf = node.add_leaf(step.text, data=Ref("step", stage.id, step.id))
                self._steps[(stage.id, step.id)] = leaf
        manual = [t for t in runbook.triggers if t.check is None]
        if manual:
            node = self.root.add(
                Text("⚑ manual triggers", style="dim"),
                data=Ref("triggers", ""),
                expand=True,
            )
            for trigger in manual:
                self._triggers[trigger.id] = node.add_leaf(
                    clean(trigger.title or trigger.id), data=Ref("trigger", "", trigger.id)
                )

    def show(
        self,
        state: CutoverState,
        probes: dict[str, ProbeResult],
        past: History | None = None,
    ) -> None:
        self._show_checklist(state)
        current = self.runbook.stage_index(state.stage_id)
        past = past or History()
        self._live = None  # the current stage's line is drawn afresh by show_live
        for index, stage in enumerate(self.runbook.stages):
            node = self._stages[stage.id]
            hold = f" · hold {humanize(stage.hold_s)}" if stage.hold_s else ""
            if index < current:
                label = Text(f"✓ {stage.percent} % {clean(stage.title)}", style="dim")
            elif index == current:
                label = self._current_label(stage.id, hold.removeprefix(" · "), None)
            else:
                label = Text(f"○ {stage.percent} % {clean(stage.title)}{hold}")
            node.set_label(label)
            if index == current and not node.is_expanded:
                node.expand()
            for step in stage.steps:
                leaf = self._steps[(stage.id, step.id)]
                if index > current:
                    leaf.set_label(Text(f"· {clean(step.text)}", style="dim"))
                    continue
                if index < current:
                    signed = past.signoffs.get(stage.id, {}).get(step.id)
                    leaf.set_label(_step_label(step.text, signed, dim=True))
                    continue
                leaf.set_label(_step_label(step.text, state.signoffs.get(step.id)))
                if step.probe:
                    self._probes[(stage.id, step.id)].set_label(
                        _probe_label(step.probe, probes.get(step.probe))
                    )

    def _show_checklist(self, state: CutoverState) -> None:
        checklist = self.runbook.rollback
        after = state.after_rollback
        if checklist is None or after is None or not checklist.steps:
            if self._checklist is not None:
                self._checklist.remove()
                self._checklist, self._checklist_steps = None, {}
            return
        if self._checklist is None:
            first = self.root.children[0] if self.root.children else None
            self._checklist = self.root.add(
                "", data=Ref("stage", CHECKLIST), expand=True, before=first
            )
            for step in checklist.steps:
                self._checklist_steps[step.id] = self._checklist.add_leaf(
                    step.text, data=Ref("step", CHECKLIST, step.id)
                )
        title = checklist.title or "After the rollback"
        self._checklist.set_label(
            Text(f"⟲ {clean(title)} · rolled back {clock_text(after.at)}", style="bold")
        )
        for step in checklist.steps:
            self._checklist_steps[step.id].set_label(
                _step_label(step.text, after.signoffs.get(step.id))
            )

    def _current_label(self, stage_id: str, hold: str, completed: str | None) -> Text:
        stage = self.runbook.stage(stage_id)
        title = f"{stage.percent} % {clean(stage.title)}"
        if completed:
            return Text(f"✓ {title} · {clean(completed)}", style="bold green")
        return Text(f"● {title} · {clean(hold)}" if hold else f"● {title}", style="bold")

    def show_live(self, stage_id: str, hold: str, completed: str | None = None) -> None:
        """The current stage's line with its hold (by the evidence) or the completed
        cutover; relabelled only when the words changed (the console asks every second)."""
        live = (stage_id, hold, completed)
        if live == self._live or stage_id not in self._stages:
            return
        self._live = live
        self._stages[stage_id].set_label(self._current_label(stage_id, hold, completed))

    def show_triggers(self, lines: dict[str, tuple[bool, str]]) -> None:
        """Each manual trigger: raised (bold, with who, when, the note and any deadline) or
        not; relabelled only when that changed."""
        for trigger_id, (raised, words) in lines.items():
            leaf = self._triggers.get(trigger_id)
            if leaf is None or self._trigger_shown.get(trigger_id) == (raised, words):
                continue
            self._trigger_shown[trigger_id] = (raised, words)
            trigger = next(t for t in self.runbook.triggers if t.id == trigger_id)
            name = clean(trigger.title or trigger.id)
            if raised:
                leaf.set_label(Text(f"‼ {name}: {clean(words)}", style="bold"))
            else:
                leaf.set_label(Text(f"⚑ {name}: {clean(words)}", style="dim"))

    def selected_trigger(self) -> str | None:
        node = self.cursor_node
        if node is None or node.data is None or node.data.kind != "trigger":
            return None
        return node.data.step

    def point_at_trigger(self, trigger_id: str) -> None:
        leaf = self._triggers.get(trigger_id)
        if leaf is not None:
            self.move_cursor(leaf)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Space belongs to the console (pause / resume), not to folding a node.
        return action != "toggle_node"

    def selected_step(self) -> Ref | None:
        node = self.cursor_node
        if node is None or node.data is None or node.data.kind not in ("step", "probe"):
            return None
        return Ref("step", node.data.stage, node.data.step)

    def point_at_next_step(self, state: CutoverState) -> None:
        """Put the cursor on the first unsigned step, the rollback checklist's first while
        it is open: what `s` signs next. Works before the first layout: the tree numbers its
        lines here if it has not yet, so a key pressed the moment the console is drawn finds
        the cursor already placed."""
        _ = self.last_line  # builds the lines: a node's line number is set by the build
        if state.after_rollback is not None and self._checklist is not None:
            for step_id, leaf in self._checklist_steps.items():
                if step_id not in state.after_rollback.signoffs:
                    self.move_cursor(leaf)
                    return
        stage = self.runbook.stage(state.stage_id)
        for step in stage.steps:
            if step.id not in state.signoffs:
                self.move_cursor(self._steps[(stage.id, step.id)])
                return
        self.move_cursor(self._stages[stage.id])

    def scroll_to_cursor(self) -> None:
        """The cursor's row in view: placed before the first layout, it could not scroll."""
        if self.cursor_node is not None:
            self.scroll_to_node(self.cursor_node, animate=False)

    def select_stage(self, stage_id: str) -> None:
        node = self._stages[stage_id]
        node.expand()
        self.move_cursor(node)
        self.focus()


def _step_label(text: str, signed: SignOff | None, *, dim: bool = False) -> Text:
    """☐ unsigned, or ✓ with who signed and when; an override says so in words."""
    if signed is None:
        return Text(f"{'·' if dim else '☐'} {clean(text)}", style="dim" if dim else "")
    label = Text(f"✓ {clean(text)}", style="dim green" if dim else "green")
    label.append(f" — {clean(signed.actor)} {clock_text(signed.at)}", style="dim")
    if signed.override:
        note = f": {clean(signed.note, max_len=60)}" if signed.note else ""
        label.append(f" ⚠ OVERRIDE{note}", style="bold")
    return label


def _probe_label(probe_id: str, result: ProbeResult | None) -> Text:
    if result is None:
        return Text(f"probe {clean(probe_id)}: not run yet", style="dim")
    mark = "✓" if result.passed else "✗"
    style = "green" if result.passed else "bold red"
    lines = result.summary.splitlines() or [""]
    more = " …" if len(lines) > 1 else ""  # a tree row is one line: the dialog shows all
    return Text(f"{mark} probe {clean(lines[0], max_len=120)}{more}", style=style)
