"""Team mode's checkpoint (#20): the store keeps them in an append-only table (schema version
2, which `store init` adds to a version 1 schema), and a reader reads the latest for its
cutover and runbook, then only the events after it, as the files store does; one altered,
written without the key, or naming an event the store no longer has as it was is ignored."""

from __future__ import annotations

import dataclasses
import json
import os

import asyncpg
import pytest

from checkpoint_world import EVENTS
from cutover.judge.session import Session
from cutover.record import checkpoint, state, statecodec, urgent
from cutover.record.chain import digest
from cutover.record.store import pgschema
from cutover.runbook import loader
from store_world import cli, env_for, sql, with_user, write_book

KEY = "k3y-for-the-team-4a77e1"


def session_on(book, dsn: str, **env: str) -> Session:
    """Keyed unless told otherwise: on Postgres only a keyed journal keeps checkpoints."""
    env.setdefault("CUTOVER_JOURNAL_KEY", KEY)
    return Session(loader.load(book), env_for(dsn, **{k: v for k, v in env.items() if v}))


def fill(s: Session, n: int) -> None:
    for kind, fields in EVENTS[:n]:
        s.journal.append(kind, **fields)


def one_more(s: Session) -> None:
    """The 13th event, and no read (no newer checkpoint): a row at seq 13 is then the latest."""
    kind, fields = EVENTS[12]
    s.journal.append(kind, **fields)
    s.store.close()


def full(book, dsn: str, **env: str) -> dict:
    s = session_on(book, dsn, **env)
    read = s.journal.read()
    assert read.chain is None
    return statecodec.state_to_dict(state.replay(s.runbook, read.events))


def latest(dsn: str) -> tuple[int, str]:
    rows = sql(dsn, "SELECT seq, body FROM cutover.checkpoints ORDER BY seq DESC LIMIT 1")
    return rows[0][0], rows[0][1]


@pytest.fixture
def team(tmp_path, empty_dsn, monkeypatch):
    monkeypatch.setattr(checkpoint, "EVERY", 5)
    book = write_book(tmp_path)
    done = cli(book, env_for(empty_dsn), "store", "init")
    assert done.code == 0, done.output
    s = session_on(book, empty_dsn)
    fill(s, 12)
    s.state()
    s.store.close()
    return book


def test_a_command_leaves_one_and_the_next_reads_on_from_it(team, empty_dsn):
    seq, body = latest(empty_dsn)
    assert seq == 12 and json.loads(body)["seq"] == 12
    s = session_on(team, empty_dsn)
    got, _ = s.state()
    assert s._checkpoint is not None and s._checkpoint.mark.seq == 12
    assert statecodec.state_to_dict(got) == full(team, empty_dsn)
    for kind, fields in EVENTS[12:20]:
        s.journal.append(kind, **fields)
    got, _ = s.state()  # the tail followed as it grows, and a newer checkpoint left
    assert got.last_seq == 20 and s._checkpoint is not None
    assert statecodec.state_to_dict(got) == full(team, empty_dsn)
    assert latest(empty_dsn)[0] == 20
    assert s.journal.head_words().startswith("journal head seq 20 ")
    assert s.journal.verify().ok and s.journal.verify().events == 20
    s.store.close()


def test_a_forged_row_is_ignored(team, empty_dsn):
    _, body = latest(empty_dsn)
    obj = json.loads(body)
    assert obj["state"]["f"]["percent"] == 10
    obj["state"]["f"]["percent"] = 55  # the hash left as it was
    one_more(session_on(team, empty_dsn))  # a row past the last event is not even read
    sql(
        empty_dsn,
        "INSERT INTO cutover.checkpoints (cutover, runbook, seq, body) "
        "SELECT cutover, runbook, 13, $1 FROM cutover.checkpoints LIMIT 1",
        json.dumps(obj),
    )
    s = session_on(team, empty_dsn)
    got, _ = s.state()
    assert s._checkpoint is None and statecodec.state_to_dict(got) == full(team, empty_dsn)
    assert got.percent != 55
    s.store.close()


def test_a_row_past_the_last_event_does_not_hide_the_real_one(team, empty_dsn):
    """Rows cannot be deleted: a junk one at a seq the journal never reached would otherwise
    be the latest for good, and no command would read on from a checkpoint again."""
    sql(
        empty_dsn,
        "INSERT INTO cutover.checkpoints (cutover, runbook, seq, body) "
        "SELECT cutover, runbook, 1000000000, 'junk' FROM cutover.checkpoints LIMIT 1",
    )
    s = session_on(team, empty_dsn)
    got, _ = s.state()
    assert s._checkpoint is not None and s._checkpoint.mark.seq == 12
    assert statecodec.state_to_dict(got) == full(team, empty_dsn)
    s.store.close()


def test_an_event_changed_at_the_checkpoint_reads_everything_and_shows_the_break(team, empty_dsn):
    sql(empty_dsn, "ALTER TABLE cutover.events DISABLE TRIGGER append_only")
    sql(
        empty_dsn,
        "UPDATE cutover.events SET line = replace(line, '\"ana\"', '\"bob\"') WHERE seq = 12",
    )
    s = session_on(team, empty_dsn)
    got, warnings = s.state()
    assert s._checkpoint is None
    assert got.chain is not None and "does not match its hash" in warnings[0]
    s.store.close()


def test_a_keyed_reader_refuses_a_checkpoint_made_without_the_key(tmp_path, empty_dsn, monkeypatch):
    monkeypatch.setattr(checkpoint, "EVERY", 5)
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    keyed = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY=KEY)
    fill(keyed, 12)
    keyed.state()
    keyed.store.close()
    _, body = latest(empty_dsn)
    obj = json.loads(body)
    obj["keyed"], obj["state"]["f"]["percent"] = True, 55
    obj["hash"] = digest(obj)  # what someone without the key can compute
    one_more(session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY=KEY))
    sql(
        empty_dsn,
        "INSERT INTO cutover.checkpoints (cutover, runbook, seq, body) "
        "SELECT cutover, runbook, 13, $1 FROM cutover.checkpoints LIMIT 1",
        json.dumps(obj),
    )
    s = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY=KEY)
    got, _ = s.state()
    assert s._checkpoint is None and got.percent != 55
    s.store.close()


def test_store_init_upgrades_version_1_and_the_writer_may_keep_checkpoints(
    tmp_path, empty_dsn, monkeypatch
):
    book = write_book(tmp_path)
    monkeypatch.setattr(pgschema, "VERSION", 1)
    said = pgschema.init_now(empty_dsn, "cutover", None, lambda s: s)
    assert said == ["schema cutover: version 1 applied"]
    monkeypatch.setattr(pgschema, "VERSION", 2)
    role = f"writer_{os.getpid()}_{tmp_path.name[-6:]}".lower().replace("-", "_")
    sql(empty_dsn, f"CREATE ROLE {role} LOGIN PASSWORD 'pw-for-tests'")
    try:
        done = cli(book, env_for(empty_dsn), "store", "init", "--grant", role)
        assert done.code == 0 and "version 2 applied" in done.stdout, done.output
        assert "version 1 applied" not in done.stdout
        monkeypatch.setattr(checkpoint, "EVERY", 5)
        writer = with_user(empty_dsn, role, "pw-for-tests")
        s = session_on(book, writer)
        fill(s, 6)
        s.state()
        s.store.close()
        assert latest(empty_dsn)[0] == 6
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            sql(writer, "DELETE FROM cutover.checkpoints")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            sql(empty_dsn, "UPDATE cutover.checkpoints SET seq = 1")
    finally:
        sql(empty_dsn, f"DROP OWNED BY {role}")
        sql(empty_dsn, f"DROP ROLE {role}")


def test_none_is_written_under_the_move_lock_nor_in_a_rollback(team, empty_dsn):
    s = session_on(team, empty_dsn)
    for kind, fields in EVENTS[12:20]:
        s.journal.append(kind, **fields)
    with s.journal.action_lock("advance to 10 %"):
        s.state()
    with urgent.rollback():
        s.state()
    assert latest(empty_dsn)[0] == 12
    s.state()
    assert latest(empty_dsn)[0] == 20
    s.store.close()


def test_unkeyed_no_checkpoint_is_kept_or_read_so_a_forged_one_shows_nothing(
    tmp_path, empty_dsn, monkeypatch
):
    """Without a key a checkpoint's hash is a plain SHA-256: a writer could insert one with
    any state and its hash recomputed, and no event would say so. Unkeyed, the store keeps
    none and reads none: the state is always the events' (review finding)."""
    monkeypatch.setattr(checkpoint, "EVERY", 5)
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    s = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY="")
    fill(s, 12)
    honest, _ = s.state()
    s.store.close()
    assert sql(empty_dsn, "SELECT count(*) FROM cutover.checkpoints")[0][0] == 0
    # A forged one, as a writer without a key can make it: the honest mark, another state.
    forger = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY="")
    current, _ = forger.state()
    mark = forger.journal.mark()
    forged = checkpoint.Checkpoint(mark, dataclasses.replace(current, percent=55))
    body = checkpoint.encode(forged, forger.runbook, None).decode().rstrip("\n")
    forger.store.close()
    sql(
        empty_dsn,
        "INSERT INTO cutover.checkpoints (cutover, runbook, seq, body) "
        "SELECT cutover, $1, $2, $3 FROM cutover.events LIMIT 1",
        checkpoint.runbook_digest(forger.runbook),
        mark.seq,
        body,
    )
    again = session_on(book, empty_dsn, CUTOVER_JOURNAL_KEY="")
    got, _ = again.state()
    again.store.close()
    assert again._checkpoint is None and got.percent == honest.percent != 55
