"""One query's panel: its rows, where they came from, how old they are, and who reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cutover.durations import humanize
from cutover.model import Query, Runbook
from cutover.results import QueryResult
from cutover.tui.text import age_text, cell, clean, clock_text, duration_ms

# Cells added to a table per turn of the event loop: about 30 ms of measuring.
FILL_CELLS = 500


def _same(a: Any, b: Any) -> bool:
    # 1 == True and 0 == 0.0 in Python; on screen they differ.
    return type(a) is type(b) and a == b


def same_rows(a: Sequence[tuple[Any, ...]], b: Sequence[tuple[Any, ...]]) -> bool:
    """Whether two results would look the same on screen, cell for cell.

    >>> same_rows([(1, "a")], [(1, "a")]), same_rows([(1,)], [(True,)]), same_rows([], [(1,)])
    (True, False, False)
    """
    if len(a) != len(b):
        return False
    return all(
        len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def columns_read(runbook: Runbook, query_id: str) -> tuple[str, ...]:
    """The columns of a query that a gate (of any stage) or a trigger reads, each once, in
    runbook order: the panel shows them first, so no width ever cuts them off."""
    checks = [g.check for s in runbook.stages for g in s.gates] + [
        t.check
        for t in runbook.triggers
        if t.check is not None  # a manual one reads none
    ]
    read: list[str] = []
    for check in checks:
        if check.query == query_id:
            for name in (check.column, check.successes, check.trials):
                if name and name not in read:
                    read.append(name)
    return tuple(read)


def display_order(columns: Sequence[str], lead: Sequence[str]) -> tuple[int, ...]:
    """Positions of `columns` as the table shows them: the `lead` ones first (in lead's
    order), then the rest in query order.

    >>> display_order(("total", "stuck", "rate"), ("rate",))
    (2, 0, 1)
    >>> display_order(("a", "b"), ("missing", "b"))
    (1, 0)
    """
    first = [columns.index(name) for name in lead if name in columns]
    return (*first, *(i for i in range(len(columns)) if i not in first))


def truncation_note(shown: int, truncated: bool) -> str:
    """What the panel says when the fetch stopped at its cap (it read one row past it).

    >>> truncation_note(1000, True)
    'first 1,000 of ≥ 1,001 rows: cutover fetches at most 1,000 per query'
    >>> truncation_note(3, False)
    ''
    """
    if not truncated:
        return ""
    return f"first {shown:,} of ≥ {shown + 1:,} rows: cutover fetches at most {shown:,} per query"


class QueryPanel(Vertical):
    """Rows of one query. A refresh that changed anything replaces the rows in one go (the
    table then measures each column once, not once per changed cell) and puts the cursor
    back on the row where the operator left it."""

    ALLOW_MAXIMIZE = True

    def __init__(self, query: Query, lead_columns: Sequence[str] = ()) -> None:
        super().__init__(id=f"panel-{query.id}", classes="panel")
        self.query_def = query
        self.lead_columns = tuple(lead_columns)
        self.result: QueryResult | None = None  # the latest run, failed or not
        self.good: QueryResult | None = None  # the latest run that returned rows
        self._columns: tuple[str, ...] | None = None  # what the latest result holds
        self._rows: Sequence[tuple[Any, ...]] = ()
        self._table_columns: tuple[str, ...] | None = None  # what the table shows
        self._filling = False
        self._keep = (0, 0.0, 0.0)  # cursor row and scroll offsets to come back to
        self._verdicts_shown: Text | None = None
        self.border_title = escape(clean(f"{query.title} · {query.id}"))

    def compose(self) -> ComposeResult:
        help_text = " ".join(line.strip() for line in self.query_def.help.splitlines())
        yield Static(Text(clean(help_text)), classes="help")
        yield Static("", classes="error")
        yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Static("", classes="truncated")
        yield Static("", classes="verdicts")

    def on_mount(self) -> None:
        self.query_one(".truncated", Static).display = False

    @property
    def table(self) -> DataTable:
        return self.query_one(DataTable)

    def _part(self, selector: str) -> Static | None:
        """One of the panel's lines; None while the panel is being taken down (a query can
        finish while the console exits)."""
        found = self.query(selector).results(Static)
        return next(found, None)

    # -- rows ----------------------------------------------------------------------------

    def show_result(self, result: QueryResult) -> None:
        error = self._part(".error")
        if error is None or not self.query(DataTable):
            return
        self.result = result
        if result.error:
            error.update(Text(f"✗ error: {clean(result.error)}", style="bold"))
            error.display = True
            self.add_class("-failed")
            return
        error.display = False
        self.remove_class("-failed")
        self.good = result
        self._apply(result.columns, result.rows)
        note = truncation_note(len(result.rows), result.truncated)
        truncated = self._part(".truncated")
        if truncated is not None:
            truncated.update(Text(note, style="italic"))
            truncated.display = bool(note)

    def _apply(self, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
        if columns == self._columns and same_rows(rows, self._rows):
            return  # nothing to redraw: the table, its widths and the cursor stay as they are
        self._columns, self._rows = columns, rows
        if not self._filling:  # a fill cut short by this one has already moved the cursor
            table = self.table
            self._keep = (table.cursor_row, table.scroll_x, table.scroll_y)
        self._filling = True
        # A newer result replaces a fill still under way (exclusive).
        self.run_worker(
            self._fill(columns, rows), group="fill", exclusive=True, exit_on_error=False
        )

    async def _fill(self, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
        """Replace the table's rows, FILL_CELLS cells at a time: the table measures each
        batch when idle, and a key (ctrl+r) is handled between batches however many rows
        there are."""
        table = self.table
        order = display_order(columns, self.lead_columns)
        with self.app.batch_update():
            if columns != self._table_columns:
                table.clear(columns=True)
                for index in order:
                    table.add_column(Text(clean(columns[index])), key=f"c{index}")
                self._table_columns = columns
            else:
                table.clear()
        step = max(1, FILL_CELLS // max(1, len(columns)))
        for start in range(0, len(rows), step):
            if start:
                await asyncio.sleep(0)  # let the table measure this batch, and keys through
            table.add_rows(
                [cell(values[i]) for i in order] for values in rows[start : start + step]
            )
        row, scroll_x, scroll_y = self._keep
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1), scroll=False)
        # The table measures its last rows when idle; scroll back once it has.
        table.call_after_refresh(table.scroll_to, scroll_x, scroll_y, animate=False)
        self._filling = False

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
        verdicts = self._part(".verdicts")
        if verdicts is None:
            return
        joined = Text("\n").join(lines)
        joined.no_wrap, joined.overflow = True, "ellipsis"  # one line each; zoom shows more
        if joined != self._verdicts_shown:  # called every tick: repaint only on change
            self._verdicts_shown = joined
            verdicts.update(joined if lines else "")
        verdicts.display = bool(lines)
