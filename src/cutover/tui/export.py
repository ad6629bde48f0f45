"""`e`: a panel's rows as CSV, beside the journal, named by query and time; readable by this
user only (0600 in a 0700 folder), as production data should be."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover.base.private import open_private, private_dir
from cutover.tui.text import cell_text


def csv_value(value: Any) -> str:
    """Empty for NULL (what spreadsheets expect), the plain value otherwise; no separators."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return cell_text(value)
    return str(value)


def export_csv(folder: Path, panel, now: datetime) -> Path:
    columns, rows = panel.rows_for_export()
    out = private_dir(folder / ".cutover" / "exports")
    path = out / f"{panel.query_def.id}-{now.astimezone(UTC):%Y%m%d-%H%M%S}.csv"
    with open_private(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_value(v) for v in row])
    return path
