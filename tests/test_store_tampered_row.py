"""Team mode, a tampered events row (#18): the chain is the lines. An events row whose hash
column was changed on its own (its line intact) must not make the next honest append chain
onto the forged value, which would put the break on an event nobody touched, nor an
export's head record name it."""

from __future__ import annotations

from cutover.record.journal import Journal
from store_world import cli, env_for, sql, write_book
from test_store_postgres import session_on


def test_the_next_event_chains_onto_the_last_line_not_onto_a_changed_hash_column(
    tmp_path, empty_dsn
):
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    key = {"CUTOVER_JOURNAL_KEY": "k" * 32}
    ana = session_on(book, empty_dsn, user="ana", **key)
    ana.journal.append("note", note="one")
    two = ana.journal.append("note", note="two")
    sql(empty_dsn, "ALTER TABLE cutover.events DISABLE TRIGGER append_only")
    sql(empty_dsn, "UPDATE cutover.events SET hash = 'forged' WHERE seq = 2")

    three = ana.journal.append("note", note="three")
    assert three.prev == two.hash
    check = session_on(book, empty_dsn, user="bo", **key).journal.verify()
    assert check.ok and "3 events, chain intact (keyed)" in check.message, check.message

    # An export's head record names the last line's hash, not a changed column's.
    sql(empty_dsn, "UPDATE cutover.events SET hash = 'forged' WHERE seq = 3")
    out = tmp_path / "back" / "journal.jsonl"
    done = cli(book, env_for(empty_dsn, **key), "store", "export", "--to", str(out))
    assert done.code == 0, done.output
    back = Journal(out, key=key["CUTOVER_JOURNAL_KEY"].encode()).verify()
    assert back.ok and back.events == 3 and "head record" not in back.message, back.message
