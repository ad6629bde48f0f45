"""While another process holds the move lock, the console shows a line naming it ("⟳ MOVING:
bo@jump-2 pid N since HH:MMZ (… ago): 'advance to 10 %'"), taken from the holder's row on
Postgres (brought by its notification) or its lock file on files; the line goes when the
holder frees the lock, and when it is killed -9 (Postgres frees an advisory lock with its
connection, the kernel a file lock with its process; on files the holder's name stays in the
file, and is not shown). The host name is the operator's text: `[bold]` in it shows as
written. The holder is a real second process, taking the lock through cutover's own journal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cutover.judge.session import Session
from cutover.record.store import pgschema
from cutover.runbook import loader
from cutover.tui import mover_line
from cutover.tui.app import CutoverApp
from store_world import CutProxy

from .conftest import until, visible_text, write_runbook

HOST = "jump-[bold]2[/bold]"
HOLDER = """
import os, sys
from cutover.judge.session import Session
from cutover.runbook import loader

session = Session(loader.load(sys.argv[1]), dict(os.environ))
session.journal.host = sys.argv[2]
while True:
    with session.journal.action_lock("advance to 10 %"):
        print("held", flush=True)
        sys.stdin.readline()
    print("freed", flush=True)
    sys.stdin.readline()
"""
STORE = '\n[store]\nkind = "postgres"\ndsn_env = "TEST_STATE"\nschema = "cutover"\n'


class Holder:
    """Another process that takes the move lock, frees it and takes it again on Enter."""

    def __init__(self, book: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(book), HOST],
            env={**os.environ, **env, "USER": "bo"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.said("held")

    @property
    def pid(self) -> int:
        return self.process.pid

    def said(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == word, f"the holder said {line!r}, not {word!r}"

    def next(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        self.said(word)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def moving(app: CutoverApp, holder: Holder) -> bool:
    return f"⟳ MOVING: bo@{HOST} pid {holder.pid} since " in visible_text(app)


async def walk(app: CutoverApp, book: Path, env: dict[str, str], secret: str = "") -> Holder:
    """Shown while held, gone once freed, shown again, gone once the holder is killed -9."""
    async with app.run_test(size=(160, 50)) as pilot:
        if app.session.store.kind == "postgres":
            # Listening, nothing but the holder's notification can bring the line at once.
            await until(pilot, app.session.store.listening)
        await pilot.pause(0.2)
        assert "MOVING" not in visible_text(app)
        holder = Holder(book, env)
        try:
            await until(pilot, lambda: moving(app, holder))
            assert "ago): 'advance to 10 %'" in visible_text(app)
            assert not secret or secret not in visible_text(app)
            holder.next("freed")
            await until(pilot, lambda: "MOVING" not in visible_text(app))
            holder.next("held")
            await until(pilot, lambda: moving(app, holder))
            holder.kill()
            await until(pilot, lambda: "MOVING" not in visible_text(app))
        finally:
            if holder.process.poll() is None:
                holder.kill()
    return holder


async def test_on_postgres_the_mover_is_named_until_freed_or_killed(
    tmp_path, empty_dsn, monkeypatch
):
    # No look of its own while nobody moves: the holder's notification brings the line.
    monkeypatch.setattr(mover_line, "QUIET_LOOK_S", 3600.0)
    path = write_runbook(tmp_path)
    path.write_text(path.read_text() + STORE)
    pgschema.init_now(empty_dsn, "cutover", None, str)
    env = {"USER": "ops", "TEST_DSN": "", "TEST_STATE": empty_dsn}
    app = CutoverApp(Session(loader.load(path), env), probe_poll_s=None)
    await walk(app, path, env, secret=empty_dsn)


async def test_on_files_the_mover_is_named_until_freed_or_killed(tmp_path):
    path = write_runbook(tmp_path)
    env = {"USER": "ops", "TEST_DSN": ""}
    app = CutoverApp(Session(loader.load(path), env), probe_poll_s=None)
    await walk(app, path, env)
    # Killed, the holder left its name in the lock file: the line went by the kernel's word.
    lock = app.session.journal.lock_path
    assert HOST in lock.read_text()


async def test_this_consoles_own_move_is_not_a_line(tmp_path):
    """Its own move is the header's "⟳ … in flight", not another process's."""
    path = write_runbook(tmp_path)
    app = CutoverApp(Session(loader.load(path), {"USER": "ops", "TEST_DSN": ""}))
    async with app.run_test(size=(160, 50)) as pilot:
        watch = app.mover_watch
        with app.session.journal.action_lock("advance to 10 %"):
            before = watch.looked_at
            watch.look()  # a look that begins while this process holds the lock
            await until(pilot, lambda: watch.looked_at > before and not watch._looking)
            assert watch.mover is None
            assert "MOVING" not in visible_text(app)


async def test_the_store_lost_keeps_the_line_marked_as_last_read(tmp_path, empty_dsn):
    """The console cannot ask any more: the mover it last saw stays on its line, said to be
    the last reading, with no word of the DSN; once the store answers, the line is current."""
    path = write_runbook(tmp_path)
    path.write_text(path.read_text() + STORE)
    pgschema.init_now(empty_dsn, "cutover", None, str)
    proxy = CutProxy(empty_dsn)
    env = {"USER": "ops", "TEST_DSN": "", "TEST_STATE": proxy.dsn("pw-not-shown")}
    app = CutoverApp(Session(loader.load(path), env), probe_poll_s=None)
    holder = None
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            holder = Holder(path, {**env, "TEST_STATE": empty_dsn})  # not through the door
            await until(pilot, lambda: moving(app, holder))
            proxy.cut()
            await until(pilot, lambda: "(as last read: " in visible_text(app), timeout=30)
            assert moving(app, holder)
            assert "pw-not-shown" not in visible_text(app)
            proxy.start()
            await until(pilot, lambda: "(as last read: " not in visible_text(app), timeout=30)
            assert moving(app, holder)
    finally:
        proxy.cut()
        if holder is not None and holder.process.poll() is None:
            holder.kill()


def test_a_tampered_lock_file_names_what_it_can_and_never_raises(tmp_path, monkeypatch):
    """JSON's Infinity as a pid, a time that has no UTC (year 1 at +14:00): read every second
    on the event loop, an exception here would stop the console."""
    import json

    from cutover.record.store import mover

    lock = tmp_path / "move.lock"
    monkeypatch.setattr(mover, "_locked", lambda path, who: True)
    held = {"actor": "bo", "host": "jump-2", "pid": 4242, "what": "advance"}
    lock.write_text(json.dumps({**held, "pid": float("inf")}))
    assert mover._in_file(lock) is None
    lock.write_text(json.dumps({**held, "since": "0001-01-01T00:00:00+14:00"}))
    found = mover._in_file(lock)
    assert found is not None and found.since is None
    lock.write_text(json.dumps({**held, "since": "2026-12-06T10:41:00+02:00"}))
    found = mover._in_file(lock)
    assert (
        found is not None
        and found.since is not None
        and found.since.utcoffset().total_seconds() == 0
    )
    mover_line.mover_text(found, found.since)  # draws
