"""`/` narrows what is shown, as in k9s and less: the focused panel's rows to those with the
text in any cell, or (from anywhere else) the panels to those whose title or id has it.
What is judged never changes: a filter is a view. Mixed into CutoverApp."""

from __future__ import annotations

from cutover.tui.screens.filter import FilterScreen
from cutover.tui.widgets.query_panel import QueryPanel


class FilterMixin:
    panels_filter: str = ""

    def action_filter(self) -> None:
        panel = self._focused_panel()
        if panel is not None:
            what = f"rows of {panel.query_def.title or panel.query_def.id}"

            def rows(text: str | None) -> None:
                if text is not None:
                    panel.filter_rows(text)

            self.push_screen(FilterScreen(what, panel.row_filter), rows)
            return
        self.push_screen(FilterScreen("panels", self.panels_filter), self.filter_panels)

    def filter_panels(self, text: str | None, *, quiet: bool = False) -> None:
        if text is None or self._parts is None:
            return
        self.panels_filter = text
        needle = text.casefold()
        shown = 0
        for panel in self._parts.panels.values():
            query = panel.query_def
            match = not needle or needle in f"{query.title} {query.id}".casefold()
            panel.display = match
            shown += match
        if needle and not quiet:
            total = len(self._parts.panels)
            self.say(f"{shown} of {total} panels match {text!r}; / again to change")

    def _focused_panel(self) -> QueryPanel | None:
        node = self.focused
        while node is not None and not isinstance(node, QueryPanel):
            node = node.parent
        return node
