"""Problems the operator can act on: what is wrong and exactly where."""

from __future__ import annotations

from cutover.base.errors import CutoverError
from cutover.runbook.frozen import frozen


@frozen
class Problem:
    """One mistake in a runbook or a query file, pinned to file:line:col (1-based)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ProblemsFound(CutoverError):
    """Raised with every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
