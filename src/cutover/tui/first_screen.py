"""The console's first seconds: the panels that fit on the first screen are composed and
fetched first; the panels below it, the HTTP queries below it, a flag on Vercel and the
probes come once those have answered, so that neither their layout nor their imports stand
in the first screen's way."""

from __future__ import annotations

from textual.containers import VerticalScroll

from cutover.runbook.model import Query, Runbook
from cutover.sources import httpclient
from cutover.sources.first_answers import asked_first, panels_that_fit
from cutover.traffic import flags
from cutover.tui.widgets.query_panel import QueryPanel, columns_read


def _speaks_http(runbook: Runbook) -> bool:
    return (
        runbook.flag.kind == "vercel"
        or bool(runbook.probes)
        or any(q.kind == "http" for q in runbook.queries.values())
    )


class FirstScreenMixin:
    """Mixed into CutoverApp."""

    def _panels_first(self) -> list[Query]:
        """The panels that can be on screen at start (sources/first_answers, which asked
        their queries before the screen was built)."""
        return panels_that_fit(self.runbook, self.size.height)

    def _first_fetches(self) -> list[str]:
        """What is fetched at once: the first screen's panels (and what a derived one among
        them is computed from), then every SQL query, the first screen's first. The HTTP
        queries below it wait for _start_the_rest."""
        assert self._parts is not None
        return asked_first(self.runbook, self._parts.panels)

    def _start_the_rest(self) -> None:
        """Once the first screen's panels have answered (or REST_AFTER_S has passed): the
        HTTP queries below it, a flag on Vercel and the stage's probes. Their HTTP stack (httpx,
        anyio, the TLS context: ~0.3 s of imports) loads on a thread, but a thread importing
        holds the interpreter's lock: started with the console, it slowed the first screen's
        layout and answers by as much."""
        if self._rest_started:
            return
        self._rest_started = True
        if _speaks_http(self.runbook):
            httpclient.warm()
        for query_id in self.runbook.queries:
            # Not one that has answered (its timer runs); one in flight the refresher skips.
            if query_id not in self.results:
                self.refresher.fetch(query_id)
        if self.runbook.flag.kind == "vercel":
            self._read_the_flag()
        self.run_probes()

    def _read_the_flag(self) -> None:
        """Open the flag (unless given) and read it: a file flag with the first screen, one
        on Vercel (HTTP) with the rest."""
        if self.flag is None and self.runbook.flag.kind == "vercel":
            # Opened on a thread (an HTTP client, a CA bundle to load), then read.
            self.run_worker(self._open_flag, group="flag", exit_on_error=False)
        else:
            if self.flag is None:
                try:
                    self.flag = flags.session_flag(self.session)
                except flags.FlagError as exc:
                    self.flag_error = str(exc)
            self.read_flag()

    def _mount_the_rest(self) -> None:
        """The panels below the first screen, once it has been drawn."""
        if self._rest_timer is not None:
            self._rest_timer.stop()
            self._rest_timer = None
        if not self._laid_out():
            return
        self._start_the_rest()
        assert self._parts is not None
        shown = self._parts.panels
        rest = [
            QueryPanel(query, columns_read(self.runbook, query.id))
            for query in self.runbook.queries.values()
            if query.id not in shown
        ]
        if not rest:
            self._settle_soon()
            return
        self.main.query_one("#panels", VerticalScroll).mount_all(rest)
        for panel in rest:
            shown[panel.query_def.id] = panel
        self.call_after_refresh(self._show_the_rest, rest)
