"""Team mode, a state store that answers but refuses (a role without rights, one that does
not exist or whose password was rotated mid-incident). A rollback used to exit 2 without
touching the flag: `permission denied for schema cutover` from reading the record, and a
refusal at the door (`role "…" does not exist`) even read as a bug in cutover. A rollback
goes ahead through a store that refuses, as through one that cannot be reached: its records
are kept locally and folded in once the store takes them; every other command says the
store's words and exits 2. A console whose store starts refusing under it crashed with a
traceback after its rollback (reading the record again); it says the refusal once and stays
up on the record it read before."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cutover.judge.session import Session
from cutover.record.store import pgschema
from cutover.runbook import loader
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import RollbackScreen
from store_world import cli, env_for, write_book
from tui.conftest import spy_on_what_it_says, until, visible_text, write_runbook

PASSWORD = "s3cret-pw"


def own(dsn: str, role: str) -> str:
    """`role` made this test's own: roles belong to the whole server, shared by the tests."""
    return f"{role}_{urlsplit(dsn).path.strip('/')}"


def as_role(dsn: str, role: str, *grants: str) -> str:
    """`dsn` for this test's `role`, created with `grants` ({role} in them is its name; none:
    it may log in and do nothing else); "absent": a role that does not exist."""
    name = own(dsn, role)

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
            for grant in grants:
                await conn.execute(grant.format(role=name))
        finally:
            await conn.close()

    if grants != ("absent",):
        asyncio.run(create())
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{name}:{PASSWORD}@{host}"))


@pytest.mark.parametrize(
    ("role", "grants", "refused"),
    [
        ("no_rights", (), "permission denied for schema cutover"),
        (
            "reader",
            ("GRANT USAGE ON SCHEMA cutover TO {role}",),
            "permission denied for table",
        ),
        ("rotated_away", ("absent",), 'role "rotated_away_{db}" does not exist'),
    ],
)
def test_a_rollback_goes_ahead_through_a_store_that_refuses(
    tmp_path, empty_dsn, role, grants, refused
):
    book = write_book(tmp_path)
    owner = env_for(empty_dsn, user="ana")
    assert cli(book, owner, "store", "init").code == 0
    assert cli(book, owner, "signoff", "looked", "--note", "ok").code == 0
    assert cli(book, owner, "advance", "--confirm", "10").code == 0
    refusing = env_for(as_role(empty_dsn, role, *grants), user="bob")
    refused = refused.format(db=urlsplit(empty_dsn).path.strip("/"))

    status = cli(book, refusing, "status")
    rolled = cli(book, refusing, "rollback", "--reason", "store refuses drill", "--yes")

    assert status.code == 2 and f"the state store refused: {refused}" in status.stderr
    assert "bug" not in status.output
    assert rolled.code == 0, rolled.output
    assert (tmp_path / "flag").read_text().strip() == "0"
    assert f"the state store refused: {refused}" in rolled.output
    assert "rollback to 0 % verified" in rolled.stdout and "bug" not in rolled.output
    spill = (tmp_path / ".cutover" / "journal.jsonl.spill").read_text()
    assert "rollback.intent" in spill and "rollback.done" in spill
    assert PASSWORD not in rolled.output + status.output + spill

    # The store taking writes again (the owner's role), the rollback is in the record.
    after = cli(book, owner, "status", "--json")
    assert after.code == 0, after.output
    assert (
        '"stage": "off"' in after.stdout
        and not (tmp_path / ".cutover" / "journal.jsonl.spill").exists()
    )


async def test_ctrl_r_y_goes_ahead_when_the_store_starts_refusing_under_a_console(
    tmp_path, empty_dsn
):

    path = write_runbook(tmp_path, percent=10)
    path.write_text(
        path.read_text()
        + '\n[store]\nkind = "postgres"\ndsn_env = "TEST_STATE"\nschema = "cutover"\n'
    )
    mover = await asyncio.to_thread(as_role, empty_dsn, "mover")  # `store init` grants it
    pgschema.init_now(empty_dsn, "cutover", own(empty_dsn, "mover"), str)
    env = {"USER": "ops", "TEST_DSN": "", "TEST_STATE": mover}
    app = CutoverApp(Session(loader.load(path), env), probe_poll_s=None)
    said = spy_on_what_it_says(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "Prerequisites" in visible_text(app))

        async def revoke() -> None:
            conn = await asyncpg.connect(empty_dsn)
            try:
                await conn.execute(f"REVOKE ALL ON SCHEMA cutover FROM {own(empty_dsn, 'mover')}")
            finally:
                await conn.close()

        await revoke()
        # A teammate with rights of their own writes: the console hears of it, so its next
        # read asks the store, which refuses this console's role.
        heard = app.session.store.generation("event")
        teammate = Session(loader.load(path), {**env, "USER": "bo", "TEST_STATE": empty_dsn})
        await asyncio.to_thread(teammate.journal.append, "note", note="still looking")
        await until(pilot, lambda: app.session.store.generation("event") != heard)
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
        shown = " ".join(visible_text(app).split())
        assert "rollback to 0 % verified" in shown, shown
        # The console stays up, the record it read before on screen; the refusal is said
        # once, not at each journal poll (one a second).
        await pilot.pause(2.5)
        told = [m for m in said if "showing the record as read at" in m]
        assert len(told) == 1, told
        assert told[0].startswith("the state store refused: permission denied for schema cutover")
    assert (tmp_path / "flag" / "percent").read_text().strip() == "0"
    spill = (tmp_path / "journal.jsonl.spill").read_text()
    assert "rollback.intent" in spill and "rollback.done" in spill


async def test_a_console_opens_on_a_store_that_refuses_and_ctrl_r_y_rolls_back(tmp_path, empty_dsn):
    # It refused to open ("cutover tui: the state store refused: …", exit 2), leaving the
    # operator a shell; and a record never read made the flag's 10 % read as drift,
    # "someone changed it outside cutover".
    path = write_runbook(tmp_path, percent=10)
    path.write_text(
        path.read_text()
        + '\n[store]\nkind = "postgres"\ndsn_env = "TEST_STATE"\nschema = "cutover"\n'
    )
    pgschema.init_now(empty_dsn, "cutover", None, str)
    no_rights = await asyncio.to_thread(as_role, empty_dsn, "no_rights")
    env = {"USER": "ops", "TEST_DSN": "", "TEST_STATE": no_rights}
    app = CutoverApp(Session(loader.load(path), env), probe_poll_s=None)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: "the record cannot be read" in visible_text(app))
        shown = " ".join(visible_text(app).split())
        assert "the flag reads 10 %; the record cannot be read" in shown, shown
        assert "outside cutover" not in shown
        await pilot.press("ctrl+r", "y")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen) and app.screen.done)
        assert "rollback to 0 % verified" in " ".join(visible_text(app).split())
    assert (tmp_path / "flag" / "percent").read_text().strip() == "0"


def test_a_store_that_refused_at_first_is_listened_to_once_it_takes_the_role(tmp_path, empty_dsn):
    # Its LISTEN connection, refused at the first try, was never tried again: a console
    # opened while its role was being fixed asked the store at every journal poll for good.
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn, user="ana"), "store", "init").code == 0
    late = as_role(empty_dsn, "late")  # no rights yet
    session = Session(loader.load(book), env_for(late, user="bob"))
    session.store.follow()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # what a first refusal leaves: not listening
        assert not session.store.listening()
        time.sleep(0.1)
    pgschema.init_now(empty_dsn, "cutover", own(empty_dsn, "late"), str)  # rights given
    deadline = time.monotonic() + 60  # the backoff: 0.5, 1, 2, 5, 10 s
    while not session.store.listening():
        assert time.monotonic() < deadline, "never listened once the store took the role"
        time.sleep(0.2)
    session.store.close()
