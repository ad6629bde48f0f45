"""`cutover demo --team`'s record: the demo copy of a runbook keeps its record in files unless
the team demo gives it a store (a team-mode original never sends a demo's walk into the
team's real record), and the store the team demo prepares is team mode as the README sets it
up: a writer role that adds to the record and reads it, and cannot change what is there."""

from __future__ import annotations

import asyncio
import tomllib

import asyncpg
import pytest

from cutover.demo import team_store
from cutover.demo.runbook_copy import demo_runbook
from cutover.judge.session import Session
from cutover.runbook import loader
from store_world import env_for, write_book


def test_a_demo_copy_keeps_its_record_in_files_unless_the_team_demo_says(tmp_path):
    source = write_book(tmp_path / "src")  # an original in team mode, on the team's store
    data = tomllib.loads(source.read_text())
    assert demo_runbook(data, source, tmp_path / "demo")["store"] == {"kind": "files"}
    teamed = demo_runbook(data, source, tmp_path / "demo", store=team_store.STORE)
    assert teamed["store"] == team_store.STORE
    assert data["store"]["kind"] == "postgres"  # the original's table is left alone


def test_the_team_demos_writer_adds_to_the_record_and_cannot_rewrite_it(tmp_path, empty_dsn):
    writer = team_store.prepare_store(empty_dsn)
    assert writer.startswith(f"postgresql://{team_store.WRITER}:")
    book = loader.load(write_book(tmp_path))
    Session(book, env_for(writer, user="ana")).journal.append(
        "signoff", stage="off", step="looked", visit=1, note="", override=False, probe=None
    )
    state, _ = Session(book, env_for(writer, user="ben")).state()
    assert state.signoffs["looked"].actor.startswith("ana")

    async def rewrite() -> None:
        conn = await asyncpg.connect(writer)
        try:
            await conn.execute(f"UPDATE {team_store.SCHEMA}.events SET actor = 'mallory'")
        finally:
            await conn.close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(rewrite())
    # Run again on the same server (a role is the server's): the same writer, a new password.
    assert team_store.prepare_store(empty_dsn) != writer
