"""The watcher says a database outage once and its end once. The end was also taken from a
query asked in the same tick as the one that found the outage: one that got its answer on
a connection the server had not closed yet. The watcher then said "reachable again" at once,
started judging aloud (gate by gate, each query that failed with the restart) and said the
outage a second time. An answer ends an outage only when it was asked after it began."""

from __future__ import annotations

from pathlib import Path

from cutover.sources.results import Cause, QueryResult
from watch_world import Core, metric_database, metric_runbook


async def test_an_answer_asked_in_the_outages_own_tick_does_not_end_it(
    tmp_path: Path, empty_dsn: str
) -> None:
    core = Core(metric_runbook(tmp_path), await metric_database(empty_dsn))
    await core.start()
    try:
        watcher, now = core.watcher, core.clock.now()
        lost = QueryResult(
            "rate", ran_at=now, error="database unreachable: gone", cause=Cause.UNREACHABLE
        )
        watcher._query_done("rate", lost, None, now)
        assert watcher.db_down_since == now
        answered = QueryResult("stuck", columns=("stuck",), rows=((0,),), ran_at=now)
        watcher._query_done("stuck", answered, None, now)
        assert watcher.db_down_since == now, "the outage ended on an answer from its own tick"
        assert core.said("reachable again") == []
        # One asked after it began does end it, once.
        core.clock.advance(30)
        later = core.clock.now()
        asked_later = QueryResult("stuck", columns=("stuck",), rows=((0,),), ran_at=later)
        watcher._query_done("stuck", asked_later, None, later)
        assert watcher.db_down_since is None
        assert len(core.said("reachable again")) == 1
    finally:
        await core.close()
