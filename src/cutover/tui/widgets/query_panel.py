"""One query's panel: its rows, where they came from, how old they are, and who reads them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cutover.durations import humanize
from cutover.model import Query
from cutover.results import QueryResult
from cutover.tui.text import age_text, cell, clean, clock_text, duration_ms


def _same(a: Any, b: Any) -> bool:
    # 1 == True and 0 == 0.0 in Python; on screen they differ.
    return type(a) is type(b) and a == b


class QueryPanel(Vertical):
    """Rows of one query, updated by diff so the cursor stays where the operator left it."""

    ALLOW_MAXIMIZE = True

    def __init__(self, query: Query) -> None:
        super().__init__(id=f"panel-{query.id}", classes="panel")
        self.query_def = query
        self.result: QueryResult | None = None  # the latest run, failed or not
        self.good: QueryResult | None = None  # the latest run that returned rows
        self._columns: tuple[str, ...] | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._verdicts_shown: Text | None = None
        self.border_title = escape(clean(f"{query.title} · {query.id}"))

    def compose(self) -> ComposeResult:
        help_text = " ".join(line.strip() for line in self.query_def.help.splitlines())
        yield Static(Text(clean(help_text)), classes="help")
        yield Static("", classes="error")
        yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Static("", classes="verdicts")

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    # -- rows ----------------------------------------------------------------------------

    def show_result(self, result: QueryResult) -> None:
        self.result = result
        error = self.query_one(".error", Static)
        if result.error:
            error.update(Text(f"✗ error: {clean(result.error)}", style="bold"))
            error.display = True
            self.add_class("-failed")
            return
        error.display = False
        self.remove_class("-failed")
        self.good = result
        self._apply(result.columns, list(result.rows))

    def _apply(self, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        table = self.table
        with self.app.batch_update():
            if columns != self._columns:
                table.clear(columns=True)
                for index, name in enumerate(columns):
                    table.add_column(Text(clean(name)), key=f"c{index}")
                self._columns = columns
                self._rows = []
            for r, row in enumerate(rows):
                if r < len(self._rows):
                    old = self._rows[r]
                    for c, value in enumerate(row):
                        if not _same(old[c], value):
                            table.update_cell(str(r), f"c{c}", cell(value), update_width=True)
                else:
                    table.add_row(*(cell(v) for v in row), key=str(r))
            for r in range(len(rows), len(self._rows)):
                table.remove_row(str(r))
        self._rows = rows

    def rows_for_export(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        return self._columns or (), list(self._rows)

    # -- what surrounds the rows -----------------------------------------------------------

    def show_meta(
        self,
        now: datetime,
        interval_s: float,
        *,
        running: bool,
        paused: bool,
        stale_after_s: float | None = None,
        paused_for: str = "",
    ) -> bool:
        """The subtitle: last run, duration, age (STALE past two intervals: `stale_after_s`
        when given, the runbook's for a gate's or trigger's query). True if stale."""
        good = self.good
        age, stale = age_text(good.ran_at if good else None, stale_after_s or interval_s, now)
        parts = []
        if good is not None:
            parts.append(f"ran {clock_text(good.ran_at)}")
            parts.append(duration_ms(good.duration_s))
        parts.append(f"⚠ {age}" if stale else age)
        parts.append(f"every {humanize(interval_s)}")
        if paused:
            parts.append(f"⏸ paused {paused_for}".rstrip())
        elif running:
            parts.append("⟳")
        subtitle = escape(" · ".join(parts))
        # Setting a border title repaints the panel even when it is the same text, and this
        # runs every tick: only on change.
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
        if stale != self.has_class("-stale"):
            self.set_class(stale, "-stale")
        return stale

    def show_verdicts(self, lines: Sequence[Text]) -> None:
        verdicts = self.query_one(".verdicts", Static)
        joined = Text("\n").join(lines)
        joined.no_wrap, joined.overflow = True, "ellipsis"  # one line each; zoom shows more
        if joined != self._verdicts_shown:  # called every tick: repaint only on change
            self._verdicts_shown = joined
            verdicts.update(joined if lines else "")
        verdicts.display = bool(lines)
