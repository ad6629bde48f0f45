"""A panel's table sizes its columns from widths the panel measured once per row: it must
come out exactly as wide as Textual's own table measuring every cell, and a refill that
keeps its shape must not change the table's size (no layout of the whole screen)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from cutover.runbook.model import Query
from cutover.sources.results import QueryResult
from cutover.tui.text import cell
from cutover.tui.widgets.query_panel import QueryPanel, RowsTable

from .conftest import until

COLUMNS = ("id", "at", "status", "note", "share")
ROWS = (
    (1, datetime(2026, 11, 20, 9, 0, tzinfo=UTC), "complete", "ok", Decimal("98.50")),
    (22, None, "failed", "v2 chunker: KeyError 'conversation_id'", 0.25),
    (333, datetime(2026, 11, 20, 9, 1, tzinfo=UTC), True, "日本語のエラー", None),
    (4444, None, "processing", "tab\there ↵ and\nbreak", 1234567.891),
)


class Both(App[None]):
    def compose(self) -> ComposeResult:
        yield QueryPanel(Query("q", "Q", Path("q.sql"), None, 30))
        yield DataTable(id="plain")


async def test_the_panel_table_is_as_wide_as_textuals_own_measuring_says():
    app = Both()
    async with app.run_test(size=(200, 60)) as pilot:
        panel = app.query_one(QueryPanel)
        plain = app.query_one("#plain", DataTable)
        for name in COLUMNS:
            plain.add_column(name)
        plain.add_rows([cell(v) for v in row] for row in ROWS)
        panel.show_result(QueryResult("q", COLUMNS, ROWS, ran_at=datetime.now(UTC)))
        table = panel.table
        assert isinstance(table, RowsTable)
        await until(pilot, lambda: table.row_count == len(ROWS) and not panel._filling)
        await pilot.pause()
        ours = [c.content_width for c in table.ordered_columns]
        theirs = [c.content_width for c in plain.ordered_columns]
        assert ours == theirs
        assert table.virtual_size == plain.virtual_size


async def test_a_refill_of_the_same_shape_keeps_the_tables_size():
    app = Both()
    async with app.run_test(size=(200, 60)) as pilot:
        panel = app.query_one(QueryPanel)
        table = panel.table
        # More rows than one batch of the fill: it goes in in several turns of the loop.
        rows = tuple((n, *ROWS[n % 4][1:]) for n in range(300, 0, -1))
        panel.show_result(QueryResult("q", COLUMNS, rows, ran_at=datetime.now(UTC)))
        await until(pilot, lambda: table.row_count == len(rows) and not panel._filling)
        await pilot.pause()
        size = table.virtual_size
        sizes = []

        def changed(new_size) -> None:
            sizes.append(new_size)

        table.watch(table, "virtual_size", changed, init=False)
        shifted = ((301, *ROWS[1][1:]), *rows[:-1])  # a new row on top, every row down one
        panel.show_result(QueryResult("q", COLUMNS, shifted, ran_at=datetime.now(UTC)))
        await until(pilot, lambda: table.get_row_at(0)[0].plain == "301" and not panel._filling)
        await pilot.pause()
        assert table.virtual_size == size
        assert sizes == []  # never changed on the way, so nothing asked for a layout
