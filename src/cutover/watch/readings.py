"""What the watcher asks on its own intervals, and takes in when it answers: every query (and a
database outage in between, with reconnecting), the flag, and the stage's probes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from cutover.base.errors import CutoverError
from cutover.judge.session import query_args
from cutover.record.state import CutoverState
from cutover.runbook.durations import humanize
from cutover.sources import derived
from cutover.sources.httpquery import run_query
from cutover.sources.probes import ProbeResult, run_probe
from cutover.sources.results import Cause, QueryResult
from cutover.traffic.flags import FlagError, FlagState
from cutover.watch.words import flag_words


def _due(at: datetime | None, now: datetime, every_s: float) -> bool:
    """Due now: never planned, its time has come, or planned further ahead than one
    interval, which only a clock stepped back can do (then it would wait for the clock to
    catch up with a time planned by the old one, leaving a gap in the evidence)."""
    return at is None or at <= now or (at - now).total_seconds() > every_s


class Readings:
    """The Watcher's asking and taking in: mixed into Watcher, whose __init__ holds its state."""

    # -- starting what is due ---------------------------------------------------------------

    def _start_due(self, now: datetime, current: CutoverState) -> None:
        for qid, query in self.book.queries.items():
            key = f"query:{qid}"
            if query.kind == "derived":
                continue  # computed when what it reads answers (_query_done)
            if key in self._tasks or not _due(self._due.get(qid), now, query.refresh_s):
                continue  # a refresh never overlaps itself
            self._due[qid] = now + timedelta(seconds=query.refresh_s)
            # An http query asks an endpoint, not the database: an outage does not park it.
            if self.db_down_since is None or query.kind == "http":
                self._spawn(key, self._run_query(qid, now, current))
            else:  # not run: the evidence says so at the query's own pace
                self.results[qid] = QueryResult(
                    qid,
                    ran_at=now,
                    error=f"not run: the database is unreachable since "
                    f"{self.db_down_since:%H:%M:%S}Z; reconnecting",
                    cause=Cause.UNREACHABLE,
                    duration_s=0.0,
                )
                self._fresh.add(qid)
                self._not_run.add(qid)
                self._derive(qid)
        if (
            self.db_down_since is not None
            and "reconnect" not in self._tasks
            and self._reconnect_at is not None
            and _due(self._reconnect_at, now, max(self.pace.reconnect_s))
        ):
            self._spawn("reconnect", self._reconnect())
        flag_due = _due(self._flag_due, now, self.pace.flag_every_s)
        if self.flag is not None and "flag" not in self._tasks and flag_due:
            self._flag_due = now + timedelta(seconds=self.pace.flag_every_s)
            self._spawn("flag", self._read_flag())
        probes = self._stage_probes(current)
        if (
            probes
            and "probes" not in self._tasks
            and _due(self._probe_due, now, self.pace.probe_every_s)
        ):
            self._probe_due = now + timedelta(seconds=self.pace.probe_every_s)
            self._spawn("probes", self._run_probes(probes, now))

    async def _run_query(
        self, qid: str, launched: datetime, current: CutoverState | None = None
    ) -> QueryResult:
        query = self.book.queries[qid]
        result = await run_query(
            self.runner, query, *query_args(query, current), environ=self.session.environ
        )
        # Stamped by the watcher's clock, when it was asked for: the one time line.
        return replace(result, ran_at=launched)

    def _query_done(
        self, qid: str, result: QueryResult | None, error: BaseException | None, now: datetime
    ) -> None:
        if result is None:  # the runner never raises; if it did, the verdict waits
            result = QueryResult(qid, ran_at=now, error=f"unexpected {type(error).__name__}")
        self.results[qid] = result
        self._fresh.add(qid)
        self._not_run.discard(qid)
        self._derive(qid)
        assert result.ran_at is not None
        if self.book.queries[qid].kind == "http":
            return  # an endpoint's answer says nothing about the database
        if result.cause is Cause.UNREACHABLE:
            if self.db_down_since is None:
                self._db_down(result.ran_at, result.error or "unreachable", now)
        elif self.db_down_since is not None and result.ran_at > self.db_down_since:
            # It answered a query asked after the outage began. Not one asked in the same
            # tick as the query that found it: that one may have answered before the loss.
            self._db_up(now)

    def _derive(self, qid: str) -> None:
        """The derived queries that read `qid`, from the answers in hand: fresh with it."""
        for result in derived.refresh(self.book.queries, self.results, qid):
            self._fresh.add(result.query_id)

    def _db_down(self, since: datetime, reason: str, now: datetime) -> None:
        self.db_down_since = since
        self._reconnect_tries = 0
        # The first attempt at once: it closes the dead pool, whose own reconnecting would
        # otherwise go on behind the watcher's back.
        self._reconnect_at = now
        self.say(
            f"database outage: {reason}. Verdicts wait (gates WAIT, triggers unknown) and holds "
            "restart until it is back; reconnecting with backoff"
        )

    def _db_up(self, now: datetime) -> None:
        since = self.db_down_since
        assert since is not None
        self.db_down_since, self._reconnect_at = None, None
        self.say(
            f"database reachable again after {humanize((now - since).total_seconds())} "
            f"(unreachable since {since:%H:%M:%S}Z); evaluating every query now"
        )
        self._due = dict.fromkeys(self.book.queries, now)
        # The outage's not-run results are not what the database says now: nothing is
        # judged aloud until every query has answered again.
        for qid in self._not_run:
            self.results.pop(qid, None)
            for query in self.book.queries.values():
                if qid in query.derived_from:
                    self.results.pop(query.id, None)
        self._not_run.clear()
        self._ready_from = now

    async def _reconnect(self) -> None:
        await self.runner.aclose()
        await self.runner.connect()  # DatabaseUnavailable while it is still down

    def _reconnected(self, error: BaseException | None, now: datetime) -> None:
        if self.db_down_since is None:
            return
        if error is None:
            self._db_up(now)
            return
        steps = self.pace.reconnect_s
        delay = steps[min(self._reconnect_tries, len(steps) - 1)]
        self._reconnect_tries += 1
        self._reconnect_at = now + timedelta(seconds=delay)

    # -- the flag and the probes ------------------------------------------------------------

    async def _read_flag(self) -> FlagState | FlagError:
        assert self.flag is not None
        try:
            return await self.flag.read()
        except FlagError as exc:
            return exc

    def _flag_read(self, got: FlagState | BaseException, now: datetime) -> None:
        if not isinstance(got, FlagState):
            problem = str(got) if isinstance(got, CutoverError) else type(got).__name__
            if self.flag_down_since is None:
                self.flag_down_since = now
                self.say(
                    f"the flag cannot be read: {problem}. Still watching; an armed "
                    "auto_rollback still tries (a rollback is never blocked)"
                )
            return
        if self.flag_down_since is not None:
            down = humanize((now - self.flag_down_since).total_seconds())
            self.flag_down_since = None
            self.say(f"the flag reads again after {down}: {flag_words(got)}")
        elif self.flag_state is None:
            self.say(f"flag reads {flag_words(got)}", notify=False)
        elif flag_words(got) != flag_words(self.flag_state):
            self.say(f"flag: {flag_words(self.flag_state)} → {flag_words(got)}")
        self.flag_state = got

    def _stage_probes(self, current: CutoverState) -> list[str]:
        """The stage's probes that change nothing (GET, HEAD): the watcher runs them on a
        timer, as the console does. One with a side effect (the v1 deprecation probe POSTs a
        test import) runs only when a person signs its step."""
        stage = self.book.stage(current.stage_id)
        probes = self.book.probes
        wanted = [s.probe for s in stage.steps if s.probe in probes and probes[s.probe].safe]
        return list(dict.fromkeys(wanted))

    async def _run_probes(self, probe_ids: list[str], now: datetime) -> dict[str, ProbeResult]:
        out = {}
        for pid in probe_ids:
            out[pid] = await run_probe(self.book.probes[pid], environ=self.session.environ, now=now)
        return out

    def _probed(self, results: dict[str, ProbeResult], error: BaseException | None) -> None:
        if error is not None:
            self._say_once("probes", f"probes could not run: {type(error).__name__}")
            return
        for pid, result in results.items():
            before = self._probes.get(pid)
            if before is None:
                self.say(f"probe {result.summary}", notify=False)
            elif before.status != result.status:
                self.say(f"probe {pid}: {before.status} → {result.summary}")
            self._probes[pid] = result
