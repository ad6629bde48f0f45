"""Team mode, a state store DSN that does not parse (#18): a port that is not a number, a
broken IPv6 address. The store is unreachable, said without a word of the DSN (a password
with a '/' in it reads as the port); status and store init are refused, a rollback goes
ahead."""

from __future__ import annotations

import pytest

from store_world import cli, env_for, write_book


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://ana:s3cret/pw@127.0.0.1/cutover", "postgresql://ana:s3cretpw@[::1/cutover"],
)
def test_a_dsn_that_does_not_parse_is_the_store_unreachable_and_a_rollback_goes_ahead(
    tmp_path, dsn
):
    book = write_book(tmp_path)
    (book.parent / "flag").write_text("10\n")
    env = env_for(dsn)

    status = cli(book, env, "status")
    assert status.code == 2, status.output
    assert "state store cannot be reached" in status.stderr
    assert "does not parse" in status.stderr and "bug" not in status.output

    init = cli(book, env, "store", "init")
    assert init.code != 0 and "does not parse" in init.stderr, init.output

    rolled = cli(book, env, "rollback", "--reason", "drill", "--yes")
    assert rolled.code == 0, rolled.output
    assert (book.parent / "flag").read_text().strip() == "0"
    for ran in (status, init, rolled):
        assert "s3cret" not in ran.output, ran.output
