"""Enter opens the detail of the row under the cursor: a panel's row, a step of the runbook
tree, a manual trigger. Mixed into CutoverApp; expects runbook, cstate, report, probe_results."""

from __future__ import annotations

from textual.widgets import DataTable, Tree

from cutover.record.journal import iso_utc
from cutover.traffic.signoff import contradicted
from cutover.tui.screens.detail import DetailScreen
from cutover.tui.text import cell_text
from cutover.tui.widgets.query_panel import QueryPanel
from cutover.tui.widgets.runbook_pane import CHECKLIST, RunbookPane


class DetailsMixin:
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        panel = event.data_table.parent
        while panel is not None and not isinstance(panel, QueryPanel):
            panel = panel.parent
        # The rows the table shows: the last good answer (an error keeps them on screen),
        # narrowed by `/` when a filter is set.
        result = panel.good if panel is not None else None
        rows = panel.shown_rows(result) if panel is not None and result is not None else ()
        if result is None or not 0 <= event.cursor_row < len(rows):
            return
        event.stop()
        row = rows[event.cursor_row]
        # Text whole (the table clips it); everything else as the table shows it.
        fields = [
            (name, value if isinstance(value, str) else cell_text(value))
            for name, value in zip(result.columns, row, strict=False)
        ]
        title = f"{panel.query_def.title} · row {event.cursor_row + 1} of {len(rows)}"
        self.push_screen(DetailScreen(title, fields))

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        if not isinstance(event.control, RunbookPane):
            return
        ref = event.node.data
        if ref is None or ref.kind not in ("step", "probe", "trigger"):
            return  # a stage's row folds and unfolds, as before
        event.stop()
        if ref.kind == "trigger":
            self.push_screen(DetailScreen(*self._trigger_detail(ref.step)))
        else:
            self.push_screen(DetailScreen(*self._step_detail(ref.stage, ref.step)))

    def _step_detail(self, stage_id: str, step_id: str | None):
        book = self.runbook
        checklist = book.rollback
        if stage_id == CHECKLIST and checklist is not None:
            step = next(s for s in checklist.steps if s.id == step_id)
            gates, where = checklist.gates, checklist.title or "after the rollback"
            after = self.cstate.after_rollback
            signed = after.signoffs.get(step.id) if after else None
        else:
            stage = book.stage(stage_id)
            step = next(s for s in stage.steps if s.id == step_id)
            gates, where = stage.gates, stage.title
            signed = self.cstate.signoffs.get(step.id) if stage_id == self.cstate.stage_id else None
        fields = [("step", step.id), ("text", step.text), ("in", where)]
        if signed is not None:
            fields.append(("signed", f"{signed.actor} at {iso_utc(signed.at)}"))
            if signed.note:
                fields.append(("note", signed.note))
            if signed.override:
                fields.append(("override", "yes: signed against what the screen said"))
        else:
            fields.append(("signed", "not yet"))
        if step.probe:
            probe = self.probe_results.get(step.probe)
            fields.append(("probe", probe.summary if probe else f"{step.probe}: not run yet"))
        for words in contradicted(step, gates, self.report):
            fields.append(("against", words))
        return f"Step · {step.id}", fields

    def _trigger_detail(self, trigger_id: str | None):
        trigger = next(t for t in self.runbook.triggers if t.id == trigger_id)
        fields = [
            ("trigger", trigger.id),
            ("title", trigger.title or ""),
            ("severity", trigger.severity),
        ]
        raised = self.cstate.raised.get(trigger.id)
        if raised is not None:
            fields.append(("raised", f"{raised.actor} at {iso_utc(raised.at)}"))
            fields.append(("note", raised.note))
        else:
            fields.append(("raised", "no"))
        return f"Trigger · {trigger.id}", fields
