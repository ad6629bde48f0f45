"""Team mode live (#18): another host's sign-off is heard (NOTIFY) and read at once; the move
lock is a session advisory lock that names its holder and dies with it (kill -9); the store
unreachable keeps the last record on show (stale), refuses what needs recording, lets a
rollback go ahead (spilled locally, folded in later) and never shows its DSN."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cutover.judge.session import Session
from cutover.record.journal import ActionBusy
from cutover.record.store.base import StoreUnavailable
from cutover.runbook import loader
from store_world import CutProxy, cli, env_for, write_book
from test_pooler import PGBOUNCER, pooler  # noqa: F401  (the fixture)


def wait_for(predicate, timeout: float = 20.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def team(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    done = cli(book, env_for(empty_dsn), "store", "init")
    assert done.code == 0, done.output
    return book, empty_dsn


def test_a_signoff_on_another_host_is_heard_and_read_at_once(team):
    book, dsn = team
    ana = Session(loader.load(book), env_for(dsn, user="ana"))
    assert ana.journal.read().events == ()
    heard = threading.Event()
    ana.store.on_change(heard.set)
    wait_for(ana.store.listening, what="listening")
    heard.clear()
    signed = cli(book, env_for(dsn, user="bo"), "signoff", "looked", "--note", "from jump-2")
    assert signed.code == 0, signed.output
    assert heard.wait(10), "no notification"
    (event,) = ana.journal.read().events
    assert event.kind == "signoff" and event.actor.startswith("bo")
    # Listening, a read with nothing new asks the store nothing: the view is the same object.
    assert ana.journal.read().events[0] is event


MOVER = textwrap.dedent(
    """
    import sys, time
    from cutover.judge.session import Session
    from cutover.runbook import loader
    import os
    session = Session(loader.load(sys.argv[1]), dict(os.environ))
    with session.journal.action_lock("advance to 10 %"):
        print("held", flush=True)
        time.sleep(600)
    """
)


def test_the_move_lock_names_its_holder_and_dies_with_it(team):
    book, dsn = team
    mover = subprocess.Popen(
        [sys.executable, "-c", MOVER, str(book)],
        env=env_for(dsn, user="carl"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert mover.stdout is not None and mover.stdout.readline().strip() == "held"
        bo = Session(loader.load(book), env_for(dsn, user="bo"))
        holder = bo.store.move_holder()
        assert holder is not None and holder.startswith("carl") and f"pid {mover.pid}" in holder
        assert "'advance to 10 %'" in holder
        with pytest.raises(ActionBusy) as busy, bo.journal.action_lock("advance to 10 %"):
            pass
        assert busy.value.what == "advance to 10 %" and "carl" in busy.value.holder
        status = cli(book, env_for(dsn, user="bo"), "status")
        assert "MOVING    carl" in status.stdout, status.output
        # Two advances at once: the second is refused, naming the one moving.
        assert cli(book, env_for(dsn, user="bo"), "signoff", "looked").code == 0
        second = cli(book, env_for(dsn, user="bo"), "advance", "--confirm", "10")
        assert second.code == 1 and "carl" in second.stderr, second.output
        assert "'advance to 10 %'" in second.stderr
        assert (book.parent / "flag").read_text().strip() == "0"
        mover.send_signal(signal.SIGKILL)
        mover.wait()
        # Postgres frees a session lock with its connection: nobody has to clear anything.
        wait_for(lambda: bo.store.move_holder() is None, what="the lock freed")
        with bo.journal.action_lock("advance to 10 %"):
            assert bo.store.move_holder().startswith("bo")
        assert bo.store.move_holder() is None
    finally:
        if mover.poll() is None:
            mover.kill()
            mover.wait()


def test_the_store_unreachable_shows_the_last_record_stale_refuses_and_rolls_back(team):
    book, dsn = team
    proxy = CutProxy(dsn)
    secret_dsn = proxy.dsn("s3cret-pw")
    env = env_for(secret_dsn, user="ana")
    assert cli(book, env, "signoff", "looked", "--note", "ok").code == 0
    assert cli(book, env, "advance", "--confirm", "10").code == 0
    assert (book.parent / "flag").read_text().strip() == "10"
    ana = Session(loader.load(book), env)
    before, _ = ana.state()
    assert before.stage_id == "canary"

    proxy.cut()
    current, warnings = ana.state()
    assert current.stage_id == "canary" and current.last_seq == before.last_seq
    assert any("stale" in w and "cannot be reached" in w for w in warnings), warnings
    with pytest.raises(StoreUnavailable):
        ana.journal.append("note", note="lost")

    status = cli(book, env, "status")
    assert status.code == 2 and "state store cannot be reached" in status.stderr
    raised = cli(book, env, "raise", "bogus", "--note", "x")
    assert raised.code != 0
    rollback = cli(book, env, "rollback", "--reason", "store down drill", "--yes")
    assert rollback.code == 0, rollback.output
    assert (book.parent / "flag").read_text().strip() == "0"
    spill = book.parent / ".cutover" / "journal.jsonl.spill"
    assert spill.exists() and "rollback" in spill.read_text()
    for ran in (status, raised, rollback):
        assert "s3cret-pw" not in ran.output and secret_dsn not in ran.output
    assert "s3cret-pw" not in spill.read_text()

    proxy.start()
    back = cli(book, env, "journal")
    assert back.code == 0, back.output
    assert "folded rollback.intent" in back.stderr and not spill.exists()
    events = Session(loader.load(book), env).journal.read().events
    folded = [(e.kind, e.get("recovered")) for e in events if e.kind.startswith("rollback")]
    assert folded == [("rollback.intent", True), ("rollback.done", True)]
    done = cli(book, env, "status")
    assert done.code == 0 and "stage     off" in done.stdout, done.output
    proxy.cut()


@pytest.mark.skipif(PGBOUNCER is None, reason="needs pgbouncer (.ci/run installs it)")
def test_through_a_transaction_pooler_locks_are_refused_with_the_remedy(team, pooler):  # noqa: F811
    from urllib.parse import urlsplit

    book, dsn = team
    through = pooler.rsplit("/", 1)[0] + urlsplit(dsn).path  # the test's database, pooled
    env = env_for(through)
    assert cli(book, env, "signoff", "looked", "--note", "ok").code == 0  # records go in
    refused = cli(book, env, "advance", "--confirm", "10")
    assert refused.code == 2, refused.output
    assert "transaction pooler" in refused.stderr and "session pooler" in refused.stderr
    assert (book.parent / "flag").read_text().strip() == "0"
    # A rollback is never refused for it: it goes ahead without the lock it cannot trust.
    back = cli(book, env, "rollback", "--reason", "drill", "--yes")
    assert back.code == 0, back.output
    assert "transaction pooler" in back.output
    ana = Session(loader.load(book), env)
    ana.store.follow()
    wait_for(lambda: ana.store.problem is not None, what="the pooler found")
    assert not ana.store.listening()


def start_watch(book: Path, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """`cutover watch` in its own process; its lines gathered as they come."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), "watch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=book.parent,
    )
    lines: list[str] = []

    def gather() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=gather, daemon=True).start()
    return process, lines


def test_one_watcher_leads_a_standby_takes_over_when_it_is_killed(team):
    book, dsn = team
    leader, led = start_watch(book, env_for(dsn, user="w1", CUTOVER_DATABASE_URL=dsn))
    standby = None
    try:
        wait_for(lambda: any("watcher started" in line for line in led), what="the leader up")
        standby, stood = start_watch(book, env_for(dsn, user="w2", CUTOVER_DATABASE_URL=dsn))
        wait_for(lambda: any("standing by" in line for line in stood), what="standing by")
        assert "w1" in "".join(stood)
        assert not any("watcher started" in line for line in stood)  # it evaluates nothing
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        wait_for(lambda: any("took over the lead" in line for line in stood), timeout=30)
        wait_for(lambda: any("watcher started" in line for line in stood), what="it leads")
        holder = Session(loader.load(book), env_for(dsn)).store.locks.holder("watch")
        assert holder is not None and holder[0].startswith("watch (w2)")
    finally:
        for process in (leader, standby):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)


def test_the_store_lost_mid_watch_the_leader_goes_on_and_leads_again_when_it_is_back(team):
    book, dsn = team
    proxy = CutProxy(dsn)
    env = env_for(proxy.dsn(), user="w1", CUTOVER_DATABASE_URL=dsn)
    leader, led = start_watch(book, env)
    try:
        wait_for(lambda: any("watcher started" in line for line in led), what="the leader up")
        proxy.cut()
        wait_for(lambda: any("lead cannot be confirmed" in line for line in led), timeout=30)
        assert leader.poll() is None  # still watching: it never stops for the store alone
        proxy.start()
        wait_for(lambda: any("leads again" in line for line in led), timeout=30)
        holder = Session(loader.load(book), env_for(dsn)).store.locks.holder("watch")
        assert holder is not None and holder[0].startswith("watch (w1)")
        assert not any("stops evaluating" in line for line in led)
    finally:
        proxy.cut()
        if leader.poll() is None:
            leader.terminate()
            leader.wait(20)
