"""One query's panel: its rows, where they came from, how old they are, and who reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.widgets import DataTable, Static

from cutover.runbook.durations import humanize
from cutover.runbook.model import Query, Runbook
from cutover.sources.results import QueryResult
from cutover.tui.text import age_text, cell, cell_text, clean, clock_text, duration_ms

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


class RowsTable(DataTable):
    """A panel's table, told by the panel how wide each column's widest cell is (the panel
    measures a row once, when it first formats it), so that a refill neither measures every
    cell again (~70 ms for 1,000 rows of 4 columns, on the console's loop) nor changes the
    table's size while its rows go in: the size is set once, when the fill is done, and a
    result of the same shape as the last one then needs no new layout of the screen."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.widths: tuple[int, ...] | None = None  # widest cell per column, display order
        self.filling = False

    def _update_dimensions(self, new_rows: Any) -> None:
        # Textual calls this when idle, with the rows added since.
        if not self._knows_widths():
            super()._update_dimensions(new_rows)
        elif not self.filling:
            self.settle()

    def _knows_widths(self) -> bool:
        widths = self.widths
        return widths is not None and len(widths) == len(self.columns)

    def settle(self) -> None:
        """Column widths (they only grow, as the table's own measuring does) and the
        scrollable size, from the widths the panel gave."""
        if not self._knows_widths():
            return
        assert self.widths is not None
        for column, width in zip(self.ordered_columns, self.widths, strict=False):
            column.content_width = max(column.content_width, width)
        width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(
            width + self._row_label_column_width, self._total_row_height + header
        )


def _row_key(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """What a row is remembered by between refreshes: its values with their types (1, 1.0
    and True look different on screen); None when a value cannot be hashed."""
    key = tuple((type(v), v) for v in values)
    try:
        hash(key)
    except TypeError:
        return None
    return key


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
        self._rows: Sequence[tuple[Any, ...]] = ()  # as shown: filtered when `/` set one
        self.row_filter = ""  # `/`: only rows with this text in a cell (a view, never judged)
        self._table_columns: tuple[str, ...] | None = None  # what the table shows
        self._filling = False
        self._keep = (0, 0.0, 0.0)  # cursor row and scroll offsets to come back to
        self._verdicts_shown: Text | None = None
        # Each row of the latest fill as the table shows it, and its cells' widths: a row
        # still in the next result (a log shifted by one row) is not formatted again.
        self._formatted: dict[tuple[Any, ...], tuple[list[Text], tuple[int, ...]]] = {}
        self._said: dict[str, object] = {"truncated": ""}  # what the error/note lines show
        self._meta_said: tuple | None = None  # what the subtitle was made from
        self.border_title = escape(clean(f"{query.title} · {query.id}"))
        # Its inner width as the last resize said, for what is drawn to fit it every second
        # (the trends): asking a widget its size lays out the whole screen when anything moved.
        self.width_inside = 0
        # Whether the operator can see it (tui/onscreen): out of view, an answer waits here
        # and is drawn when the panel scrolls back into view.
        self.in_view = True
        self._waiting: QueryResult | None = None

    def on_resize(self, event: events.Resize) -> None:
        self.width_inside = max(0, event.size.width - self.styles.gutter.width)  # outer size

    def compose(self) -> ComposeResult:
        # The error line (above the rows) and the truncation note (below them) are mounted
        # the first time there is something to say (_line): most panels never need them, and
        # every widget on the first screen is styled and laid out before it is drawn.
        help_text = " ".join(line.strip() for line in self.query_def.help.splitlines())
        yield Static(Text(clean(help_text)), classes="help")
        yield RowsTable(cursor_type="row", zebra_stripes=True)
        yield Static("", classes="verdicts")

    def on_mount(self) -> None:
        # Its parts, found once: the console updates every panel on every tick, and a query
        # of the DOM per part was most of what that cost.
        self._parts = {
            f".{name}": self.query_one(f".{name}", Static) for name in ("help", "verdicts")
        }
        self._table = self.query_one(DataTable)

    def _line(self, name: str) -> Static | None:
        """The error line or the truncation note, mounted (hidden) on first use: the error
        above the table, the note below it. None while the panel is being taken down."""
        parts = getattr(self, "_parts", None)
        if parts is None or f".{name}" in parts or not self.table.is_attached:
            return self._part(f".{name}")
        line = Static("", classes=name)
        line.display = False
        if name == "error":
            self.mount(line, before=self.table)
        else:
            self.mount(line, after=self.table)
        self._parts[f".{name}"] = line
        return line

    @property
    def table(self) -> DataTable:
        table = getattr(self, "_table", None)
        return table if table is not None else self.query_one(DataTable)

    def _part(self, selector: str) -> Static | None:
        """One of the panel's lines; None while the panel is being taken down (a query can
        finish while the console exits)."""
        found = getattr(self, "_parts", {}).get(selector)
        return found if found is not None and found.is_attached else None

    # -- rows ----------------------------------------------------------------------------

    def see(self, in_view: bool) -> None:
        """Told each second whether it is in view; coming into view, it draws what came."""
        # Until its first layout it is not in the compositor's record of what it drew, yet
        # about to be drawn: it counts as in view (the first paint must not wait a second).
        self.in_view = in_view or not self.width_inside
        if self.in_view and self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self.show_result(waiting)

    def show_result(self, result: QueryResult) -> None:
        if self._part(".verdicts") is None or not self.table.is_attached:
            return  # not mounted yet, or being taken down
        if not self.in_view:  # kept, drawn when it scrolls into view (see)
            self.result, self._waiting = result, result
            if not result.error:
                self.good = result
            return
        self.result = result
        if result.error:
            error = self._line("error")
            if error is None:
                return
            said = Text(f"✗ error: {clean(result.error)}", style="bold")
            if said != self._said.get("error"):  # every refresh: repaint only a change
                self._said["error"] = said
                error.update(said)
            error.display = True
            self.add_class("-failed")
            return
        error = self._part(".error")
        if error is not None and error.display:
            error.display = False
        self.remove_class("-failed")
        self.good = result
        shown = self.shown_rows(result)
        self._apply(result.columns, shown)
        note = truncation_note(len(result.rows), result.truncated)
        if self.row_filter:
            kept = f"{len(shown):,} of {len(result.rows):,} rows have {self.row_filter!r}"
            kept += " (/ to change)"
            note = f"{kept} · {note}" if note else kept
        if note != self._said.get("truncated"):
            truncated = self._line("truncated")
            if truncated is not None:
                self._said["truncated"] = note
                truncated.update(Text(note, style="italic"))
                truncated.display = bool(note)

    def shown_rows(self, result: QueryResult) -> Sequence[tuple[Any, ...]]:
        """The rows the table shows: all of them, or those with the filter's text in a cell
        (as the cell reads on screen, case ignored)."""
        needle = self.row_filter.casefold()
        if not needle:
            return result.rows
        return [r for r in result.rows if any(needle in cell_text(v).casefold() for v in r)]

    def filter_rows(self, text: str) -> None:
        self.row_filter = text
        good, latest = self.good, self.result
        if good is None:
            return
        if latest is not None and latest.error:
            self._apply(good.columns, self.shown_rows(good))  # the error line stays
        else:
            self.show_result(good)

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
            partial(self._fill, columns, rows), group="fill", exclusive=True, exit_on_error=False
        )

    async def _fill(self, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
        """Replace the table's rows, FILL_CELLS cells at a time, so a key (ctrl+r) is handled
        between batches however many rows there are. A row already shown is not formatted
        or measured again, and the table's size is set once, at the end."""
        table = self.table
        order = display_order(columns, self.lead_columns)
        with self.app.batch_update():
            if columns != self._table_columns:
                table.clear(columns=True)
                for index in order:
                    table.add_column(Text(clean(columns[index])), key=f"c{index}")
                self._table_columns = columns
                self._formatted = {}
            else:
                table.clear()
        known = isinstance(table, RowsTable)
        if known:
            table.filling = True
        before, formatted = self._formatted, {}
        widths = [0] * len(order)
        step = max(1, FILL_CELLS // max(1, len(columns)))
        try:
            for start in range(0, len(rows), step):
                if start:
                    await asyncio.sleep(0)  # keys go through between batches
                batch = []
                for values in rows[start : start + step]:
                    key = _row_key(values)
                    shown = before.get(key) if key is not None else None
                    if shown is None:
                        cells = [cell(values[i]) for i in order]
                        shown = (cells, tuple(c.cell_len for c in cells))
                    if key is not None:
                        formatted[key] = shown
                    batch.append(shown[0])
                    widths = [max(w, n) for w, n in zip(widths, shown[1], strict=True)]
                table.add_rows(batch)
        finally:
            if known:
                table.filling = False
        self._formatted = formatted
        if known:
            table.widths = tuple(widths)
            table.settle()
        row, scroll_x, scroll_y = self._keep
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1), scroll=False)
        # The table measures its last rows when idle; scroll back once it has.
        table.call_after_refresh(table.scroll_to, scroll_x, scroll_y, animate=False)
        self._filling = False

    def rows_for_export(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """The latest answer whole: not narrowed by `/`, nor behind while out of view."""
        good = self.good
        return (good.columns, list(good.rows)) if good is not None else ((), [])

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
        # Every panel, every tick and after every answer: nothing to do unless what the
        # line says has changed.
        said = (good, age, stale, interval_s, paused, paused_for, running)
        if said == self._meta_said:
            return stale
        self._meta_said = said
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
            # One line per verdict, never wrapped: as many lines, as tall, so it is
            # repainted in place instead of laying the whole screen out again.
            before, self._verdicts_shown = self._verdicts_shown, joined
            taller = before is None or len(before.plain.split("\n")) != len(lines)
            verdicts.update(joined if lines else "", layout=taller)
        if verdicts.display != bool(lines):
            verdicts.display = bool(lines)
