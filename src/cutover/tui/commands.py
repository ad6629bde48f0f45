"""Command palette entries: the console's actions, and jumps to a query or a stage."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class CutoverCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.app
        entries: list[tuple[str, Callable[[], object], str]] = []
        for name, action, help_text in app.palette_actions():  # type: ignore[attr-defined]
            entries.append((name, partial(app.run_action, action), help_text))
        for query in app.session.runbook.queries.values():  # type: ignore[attr-defined]
            entries.append(
                (
                    f"Jump to query: {query.title}",
                    partial(app.jump_to_query, query.id),  # type: ignore[attr-defined]
                    query.id,
                )
            )
        for stage in app.session.runbook.stages:  # type: ignore[attr-defined]
            entries.append(
                (
                    f"Jump to stage: {stage.title} ({stage.percent} %)",
                    partial(app.jump_to_stage, stage.id),  # type: ignore[attr-defined]
                    stage.id,
                )
            )
        return entries

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
