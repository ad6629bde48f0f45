"""What workers report back to the app. Workers post these; only handlers touch widgets."""

from __future__ import annotations

from textual.message import Message

from cutover.sources.probes import ProbeResult
from cutover.sources.results import QueryResult
from cutover.traffic.flags import FlagState


class QueryFinished(Message):
    def __init__(self, result: QueryResult) -> None:
        super().__init__()
        self.result = result


class DatabaseStatus(Message):
    """The database went down (`up` False, with the reason) or came back."""

    def __init__(self, up: bool, detail: str) -> None:
        super().__init__()
        self.up = up
        self.detail = detail


class FlagRead(Message):
    def __init__(self, state: FlagState | None, error: str | None = None) -> None:
        super().__init__()
        self.state = state
        self.error = error


class ProbeFinished(Message):
    def __init__(self, result: ProbeResult) -> None:
        super().__init__()
        self.result = result


class ActionLine(Message):
    """One line of a move's progress (PATCH, read back, redeploy, READY, retry…)."""

    def __init__(self, move: str, line: str) -> None:
        super().__init__()
        self.move = move
        self.line = line


class ActionFinished(Message):
    def __init__(self, move: str, ok: bool, summary: str) -> None:
        super().__init__()
        self.move = move
        self.ok = ok
        self.summary = summary
