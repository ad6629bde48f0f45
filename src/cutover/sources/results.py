"""What running a query produced: rows, or an error the operator can read. No I/O here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from cutover.runbook.frozen import frozen


class Cause(StrEnum):
    """Why a query has no rows to show, as a type: behaviour follows this, never the words."""

    UNREACHABLE = "unreachable"  # no DSN, or the server cannot be reached
    TIMEOUT = "timeout"  # the runbook's statement_timeout cancelled it
    FAILED = "failed"  # Postgres (or the endpoint) refused or failed the query
    REFUSED = "refused"  # cutover refused to run it (it could write or harm)
    # The database lacks a column the query declares it `needs`: it will not run until
    # someone adds it, so waiting for it to succeed is pointless.
    LACKING = "lacking"


@frozen
class QueryResult:
    query_id: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    ran_at: datetime | None = None  # UTC; None: never ran
    duration_s: float | None = None
    error: str | None = None  # operator-readable, never holds a secret
    cause: Cause | None = None  # set exactly when error is
    # The rows were cut at the fetch cap: there were more than len(rows).
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.error is not None and self.cause is None:
            object.__setattr__(self, "cause", Cause.FAILED)

    @property
    def ok(self) -> bool:
        return self.error is None and self.ran_at is not None

    def first_row(self) -> dict[str, Any] | None:
        if not self.rows:
            return None
        return dict(zip(self.columns, self.rows[0], strict=False))
