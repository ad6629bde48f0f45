"""Team mode (#18): the record on a real Postgres. `store init` (versioned, idempotent, the
writer's grants), append-only events, the same hash chain read and verified incrementally,
import of a file journal and export back, byte for byte. Each test has a database of its own
(the `empty_dsn` fixture), so none shares a schema with another or with the validation
queries' databases."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from cutover.judge.session import Session
from cutover.record import evidence, snapshots, state
from cutover.record.chain import GENESIS, event_line
from cutover.record.journal import Journal
from cutover.record.store.postgres import PostgresStore
from cutover.runbook import loader
from cutover.sources.results import QueryResult
from store_world import cli, env_for, sql, with_user, write_book

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def session_on(book: Path, dsn: str, **env: str) -> Session:
    return Session(loader.load(book), env_for(dsn, **env))


def test_init_is_versioned_and_idempotent_and_grants_the_writer_insert_and_select(
    tmp_path, empty_dsn
):
    book = write_book(tmp_path)
    role = f"writer_{os.getpid()}_{tmp_path.name[-6:]}".lower().replace("-", "_")
    sql(empty_dsn, f"CREATE ROLE {role} LOGIN PASSWORD 'pw-for-tests'")
    try:
        first = cli(book, env_for(empty_dsn), "store", "init", "--grant", role)
        assert first.code == 0, first.output
        assert "version 1 applied" in first.stdout and "version 2 applied" in first.stdout
        again = cli(book, env_for(empty_dsn), "store", "init")
        assert again.code == 0 and "nothing to do" in again.stdout, again.output
        assert sql(empty_dsn, "SELECT count(*) FROM cutover.meta")[0][0] == 2

        writer = with_user(empty_dsn, role, "pw-for-tests")
        signed = cli(book, env_for(writer), "signoff", "looked", "--note", "fine")
        assert signed.code == 0, signed.output
        # The writer may add to the record and read it, never change it.
        for statement in (
            "UPDATE cutover.events SET kind = 'x'",
            "DELETE FROM cutover.events",
            "DELETE FROM cutover.evidence",
            "DELETE FROM cutover.checkpoints",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                sql(writer, statement)
        # The owner is refused by the trigger, and says why.
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            sql(empty_dsn, "UPDATE cutover.events SET kind = 'x'")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            sql(empty_dsn, "TRUNCATE cutover.events")
        assert [r[0] for r in sql(empty_dsn, "SELECT kind FROM cutover.events")] == ["signoff"]
    finally:
        sql(empty_dsn, f"DROP OWNED BY {role}")
        sql(empty_dsn, f"DROP ROLE {role}")


def test_without_init_every_command_says_to_run_it(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    done = cli(book, env_for(empty_dsn), "status")
    assert done.code == 2
    assert "cutover store init" in done.stderr and "Traceback" not in done.stderr
    unset = cli(book, env_for(""), "status")
    assert unset.code == 2 and "CUTOVER_STATE_URL is not set" in unset.stderr
    assert cli(book, env_for(""), "validate").code == 0  # linting needs no store
    # Unset, the store is as unreachable: a rollback still goes ahead, spilled here.
    (book.parent / "flag").write_text("10\n")
    back = cli(book, env_for(""), "rollback", "--reason", "no store here", "--yes")
    assert back.code == 0, back.output
    assert (book.parent / "flag").read_text().strip() == "0"
    assert (book.parent / ".cutover" / "journal.jsonl.spill").exists()


def test_two_sessions_share_one_chained_journal_and_a_rewrite_is_caught(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    key = {"CUTOVER_JOURNAL_KEY": "k" * 32}
    ana = session_on(book, empty_dsn, user="ana", **key)
    bo = session_on(book, empty_dsn, user="bo", **key)
    assert isinstance(ana.store, PostgresStore)
    ana.journal.append("signoff", stage="canary", step="looked", note="one")
    bo.journal.append("note", note="two")
    ana.journal.append("note", note="three")
    events = bo.journal.read().events
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.actor.split()[0] for e in events] == ["ana", "bo", "ana"]
    assert events[0].prev == GENESIS and events[1].prev == events[0].hash
    check = ana.journal.verify()
    assert check.ok and "3 events, chain intact (keyed)" in check.message
    # Nothing is on disk: the record is in the store.
    assert not (tmp_path / ".cutover" / "journal.jsonl").exists()

    # Someone with the owner's rights drops the guard and rewrites an event: both the
    # incremental reader and a full verify see the break at that seq.
    sql(empty_dsn, "ALTER TABLE cutover.events DISABLE TRIGGER append_only")
    sql(
        empty_dsn,
        "UPDATE cutover.events SET line = replace(line, '\"two\"', '\"TWO\"') WHERE seq = 2",
    )
    broken = ana.journal.verify()
    assert not broken.ok and broken.first_bad_seq == 2, broken.message
    current, warnings = session_on(book, empty_dsn, **key).state()  # a console opening now
    assert current.chain is not None and current.chain.seq == 2
    assert warnings[0] == current.chain.message
    # Removing the last event is caught by a reader that had read it.
    bo.journal.read()
    sql(empty_dsn, "DELETE FROM cutover.events WHERE seq = 3")
    gone = bo.journal.read().chain
    assert gone is not None  # (the first break it finds: the rewrite of seq 2)


def test_evidence_snapshots_and_seen_markers_live_in_the_store(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    ana, bo = session_on(book, empty_dsn, user="ana"), session_on(book, empty_dsn, user="bo")
    writer = ana.evidence_store("console", clock=lambda: T0 + timedelta(minutes=5))
    item = evidence.Evaluation(evidence.GATE, "g", "canary", "pass", 99.0, None, "fine", "sha", T0)
    writer.record([item])
    writer.record([evidence.Evaluation(**{**item.__dict__, "at": T0 + timedelta(minutes=1)})])
    writer.flush()
    runs = bo.read_evidence().runs
    assert len(runs) == 1 and runs[0].count == 2 and runs[0].by == "console"
    feed = bo.store.evidence_feed()
    assert len(feed.read().lines) >= 1 and feed.read().lines == []

    results = {"ok": QueryResult("ok", ("ok",), ((1,),), T0)}
    assert ana.store.take_snapshot("canary", 1, snapshots.EXIT, results, T0)
    assert not bo.store.take_snapshot("canary", 1, snapshots.EXIT, results, T0)
    assert bo.store.snapshot_labels("canary", 1) == {snapshots.EXIT}
    base = bo.store.baseline("canary")
    assert base is not None and base.results["ok"].rows == ((1,),)
    assert bo.store.read_snapshot("canary", 1, snapshots.EXIT).results == base.results
    assert bo.store.read_snapshot("canary", 1, snapshots.ENTRY) is None

    ana.store.mark_seen("ana", T0)
    assert bo.store.last_seen("ana") == T0 and bo.store.last_seen("bo") is None


def file_journal(folder: Path, events: int, key: bytes | None = None) -> Path:
    """A file journal of `events` events written as the files store writes them (the last
    by the Journal itself, so it has its head record), with evidence, a snapshot and a
    seen marker beside it."""
    path = folder / ".cutover" / "journal.jsonl"
    path.parent.mkdir(parents=True)
    prev, lines = GENESIS, []
    for seq in range(1, events):
        kind, fields = ("note", {"note": f"n{seq} ✓"}) if seq % 2 else ("evaluated", {"n": seq})
        event, line = event_line(
            seq, T0 + timedelta(seconds=seq), "ana", "jump-1", kind, prev, fields, key
        )
        prev = event.hash
        lines.append(line)
    path.write_bytes(b"".join(lines))
    Journal(path, actor="bo", host="jump-2", key=key, clock=lambda: T0 + timedelta(days=1)).append(
        "note", note="last"
    )
    store = evidence.EvidenceStore(
        evidence.evidence_path(path), by="watch", clock=lambda: T0 + timedelta(hours=2), key=key
    )
    for minute in range(3):
        store.record(
            [
                evidence.Evaluation(
                    evidence.GATE,
                    "g",
                    "canary",
                    "pass",
                    1.0,
                    None,
                    "ok",
                    "sha",
                    T0 + timedelta(minutes=minute),
                )
            ]
        )
    store.flush()
    results = {"ok": QueryResult("ok", ("ok",), ((1,),), T0)}
    snapshots.take(snapshots.snapshots_dir(path), "canary", 1, snapshots.EXIT, results, T0)
    (folder / ".cutover" / "journal.seen.json").write_text(json.dumps({"ana": T0.isoformat()}))
    return path


def test_import_5000_events_verify_export_and_the_files_are_byte_identical(tmp_path, empty_dsn):
    key = "k" * 32
    source = file_journal(tmp_path / "files", 5000, key.encode())
    book = write_book(tmp_path / "team")
    env = env_for(empty_dsn, CUTOVER_JOURNAL_KEY=key)
    assert cli(book, env, "store", "init").code == 0
    moved = cli(book, env, "store", "import", "--from", str(source))
    assert moved.code == 0, moved.output
    assert "imported 5000 events, 2 evidence lines" in moved.stdout
    assert "1 snapshot and 1 seen marker" in moved.stdout
    verified = cli(book, env, "journal", "--verify")
    assert verified.code == 0 and "5000 events, chain intact (keyed)" in verified.stdout
    twice = cli(book, env, "store", "import", "--from", str(source))
    assert twice.code == 2 and "already holds 5000 events" in twice.stderr

    out = tmp_path / "back" / "journal.jsonl"
    done = cli(book, env, "store", "export", "--to", str(out))
    assert done.code == 0, done.output
    assert out.read_bytes() == source.read_bytes()
    for name in ("journal.jsonl.head", "journal.evidence.jsonl"):
        assert (out.parent / name).read_bytes() == (source.parent / name).read_bytes(), name
    snap = "journal.snapshots/canary.1.exit.json"
    assert (out.parent / snap).read_bytes() == (source.parent / snap).read_bytes()
    # Replayed from the export, the files store reads the same cutover, chain whole.
    back = Journal(out, key=key.encode()).verify()
    assert back.ok and back.events == 5000 and "head record" not in back.message
    team = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY=key)
    book_obj = loader.load(book)
    from_files = state.replay(book_obj, Journal(out, key=key.encode()).read().events)
    assert state.replay(book_obj, team.journal.read().events) == from_files


def test_a_journal_that_does_not_verify_is_not_imported(tmp_path, empty_dsn):
    source = file_journal(tmp_path / "files", 5)
    data = source.read_bytes().replace(b"n3 \xe2\x9c\x93", b"n3 edited")
    source.write_bytes(data)
    book = write_book(tmp_path / "team")
    env = env_for(empty_dsn)
    assert cli(book, env, "store", "init").code == 0
    refused = cli(book, env, "store", "import", "--from", str(source))
    assert refused.code == 2 and "does not verify" in refused.stderr, refused.output
    assert sql(empty_dsn, "SELECT count(*) FROM cutover.events")[0][0] == 0


def test_the_store_dsn_never_reaches_the_record_or_the_screen(tmp_path, empty_dsn):
    from store_world import CutProxy

    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    proxy = CutProxy(empty_dsn)
    try:
        secret = proxy.dsn("hunter2-pw")
        env = env_for(secret)
        signed = cli(book, env, "signoff", "looked", "--note", f"pasted by mistake: {secret}")
        assert signed.code == 0, signed.output
        (line,) = [r[0] for r in sql(empty_dsn, "SELECT line FROM cutover.events")]
        assert "hunter2-pw" not in line and secret not in line
        shown = cli(book, env, "journal")
        assert "hunter2-pw" not in shown.output
        proxy.cut()
        down = cli(book, env, "journal", "--verify")
        assert down.code == 2 and "cannot be reached" in down.stderr, down.output
        assert "hunter2-pw" not in down.output and secret not in down.output
    finally:
        proxy.cut()
