"""The console's first seconds: the panels that fit on the first screen are composed and
fetched first; the panels below it, the HTTP queries below it, a flag on Vercel and the
probes come once those have answered, so that neither their layout nor their imports stand
in the first screen's way."""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual.containers import VerticalScroll
from textual.timer import Timer

from cutover.judge.session import query_args
from cutover.runbook.model import Query, Runbook
from cutover.sources import httpclient
from cutover.sources.db import DatabaseUnavailable
from cutover.traffic import flags
from cutover.tui.dbthread import ThreadedRunner
from cutover.tui.widgets.query_panel import QueryPanel, columns_read

# The fewest lines a panel takes: its border, a help line, a table header and one row.
SMALLEST_PANEL = 5
# The fewest lines the live lines take: the header (3), the gates and advance lines (2) and
# the keys (1).
LIVE_LINES = 6
# The first frame waits at most this long for the rows of the panels it will show: drawn
# without them, it is laid out and drawn again as each answer comes (twice, as Textual lays
# out again when a size changed), which on a busy loop delays the answers still to come.
FIRST_FRAME_WAIT_S = 0.5
FIRST_FRAME_POLL_S = 0.01


def _speaks_http(runbook: Runbook) -> bool:
    return (
        runbook.flag.kind == "vercel"
        or bool(runbook.probes)
        or any(q.kind == "http" for q in runbook.queries.values())
    )


class FirstScreenMixin:
    """Mixed into CutoverApp."""

    def start_early(self) -> None:
        """run_app, before Textual starts: the database client on a thread of its own
        (tui/dbthread), its pool opened and every SQL query sent now, the first screen's
        first. Textual's start (styles, compose, the first layout) does not yield to the
        loop: sent from it, the first answers came after the first frame, each then laid
        out and drawn on its own. A missing DSN is left for the first fetch to say."""
        if not self._own_runner or self.refresher.runner is not None:
            return
        try:
            runner = ThreadedRunner(self.session.runner())
        except DatabaseUnavailable:
            return
        self.refresher.runner = runner
        queries = self.runbook.queries
        first = self._first_fetches(queries)  # runbook order, what a derived one reads first
        runner.start_early(
            (queries[q], query_args(queries[q], self.cstate))
            for q in first
            if queries[q].kind == "sql"
        )

    def _panels_first(self) -> list[Query]:
        """The panels that can be on screen at start: the height left by the live lines
        over the smallest panel (a border, a help line, a table header and one row), and one
        more, cut by the screen's edge."""
        queries = list(self.runbook.queries.values())
        fits = max(2, (self.size.height - LIVE_LINES) // SMALLEST_PANEL + 1)
        return queries[:fits]

    def _first_fetches(self, shown: Iterable[str]) -> list[str]:
        """What is fetched at once: the first screen's panels (`shown`, and what a derived
        one among them is computed from), then every SQL query, the first screen's first.
        The HTTP queries below it wait for _start_the_rest."""
        wanted: list[str] = []
        queries = self.runbook.queries

        def add(query_id: str) -> None:
            if query_id in queries and query_id not in wanted:
                wanted.append(query_id)
                for source in queries[query_id].derived_from:
                    add(source)

        for query_id in shown:
            add(query_id)
        for query_id, query in queries.items():
            if query.kind == "sql":
                add(query_id)
        return wanted

    def _hold_first_frame(self) -> None:
        """on_mount: the panels are laid out and drawn once the first screen's have their
        rows (_first_frame_ready), or FIRST_FRAME_WAIT_S has passed; until then the first
        frame shows the header, the runbook and the keys. The loop, not laying out and
        drawing empty panels (and again with each answer), takes their answers sooner.
        (Textual lays out and draws a new screen whatever batch_update says.)"""
        if self._first_frame_ready():
            return
        box = self.main.query_one("#panels", VerticalScroll)
        box.display = False
        self._frame_hold = box
        until = time.monotonic() + FIRST_FRAME_WAIT_S

        def check() -> None:
            if time.monotonic() >= until or self._first_frame_ready():
                self._release_first_frame()

        self._frame_poll = self.set_interval(FIRST_FRAME_POLL_S, check, name="first frame")

    def _release_first_frame(self) -> None:
        hold, self._frame_hold = self._frame_hold, None
        if self._frame_poll is not None:
            self._frame_poll.stop()
            self._frame_poll = None
        if hold is not None:
            self.show_live()  # the verdicts under the rows, as _first_frame_ready counted them
            hold.display = True

    _frame_hold: VerticalScroll | None = None
    _frame_poll: Timer | None = None

    def _first_frame_ready(self) -> bool:
        """Whether every panel the first frame will show has its rows in its table. Which
        ones it shows is reckoned from the top, each panel as tall as its answer and its
        verdicts make it, down to the screen's edge."""
        assert self._parts is not None
        width = self.size.width
        inside = width - min(60, max(24, int(width * 0.34))) - 6  # the runbook pane, borders
        room = self.size.height - LIVE_LINES
        top = 0
        for panel in self._parts.panels.values():
            if top >= room:
                return True
            if not panel.filled:
                return False
            top += panel.height_for(inside) + len(self.verdict_lines(panel.query_def.id))
        return True

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
            self.run_worker(self._open_flag(), group="flag", exit_on_error=False)
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
