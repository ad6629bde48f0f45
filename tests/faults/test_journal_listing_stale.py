"""Team mode, `cutover journal` while the state store cannot be read (down, or refusing this
role): it listed nothing and exited 0, an empty record by its exit code, where `status`
exits 2. It warns and exits 2, as the README says."""

from __future__ import annotations

import pytest

from faults.test_rollback_store_refuses import as_role
from store_world import cli, env_for, write_book


@pytest.mark.parametrize("store", ["down", "refusing"])
def test_the_journal_listed_from_a_store_that_cannot_be_read_exits_2(tmp_path, empty_dsn, store):
    book = write_book(tmp_path)
    owner = env_for(empty_dsn, user="ana")
    assert cli(book, owner, "store", "init").code == 0
    assert cli(book, owner, "signoff", "looked", "--note", "ok").code == 0
    dsn = "postgresql://bob:pw@127.0.0.1:1/x" if store == "down" else as_role(empty_dsn, "lister")
    listed = cli(book, env_for(dsn, user="bob"), "journal")
    assert listed.code == 2, listed.output
    assert "showing the record as read at never" in listed.stderr
    assert cli(book, owner, "journal").code == 0  # read, it lists and exits 0
