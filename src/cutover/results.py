"""What running a query produced: rows, or an error the operator can read. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueryResult:
    query_id: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    ran_at: datetime | None = None  # UTC; None: never ran
    duration_s: float | None = None
    error: str | None = None  # operator-readable, never holds a secret

    @property
    def ok(self) -> bool:
        return self.error is None and self.ran_at is not None

    def first_row(self) -> dict[str, Any] | None:
        if not self.rows:
            return None
        return dict(zip(self.columns, self.rows[0], strict=False))
