"""Team mode, the store's host going silent while a console is connected to it (#18): every
packet is dropped, nothing is refused, so each call waits out its timeout. A rollback used to
wait for two of them (the move lock's connection, then the record's: ~20 s) before the flag
was touched. A rollback now gives the store a short time once (URGENT_S), and every other
call of the same rollback, on any connection, fails at once: its records are spilled."""

from __future__ import annotations

import asyncio

from cutover.judge.session import Session
from cutover.record import urgent
from cutover.runbook import loader
from cutover.traffic import actions, flags
from store_world import CutProxy, cli, env_for, write_book


def test_a_rollback_waits_for_a_silent_store_once_and_briefly(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    proxy = CutProxy(empty_dsn)
    env = env_for(proxy.dsn(), user="ana")
    assert cli(book, env, "signoff", "looked", "--note", "ok").code == 0
    assert cli(book, env, "advance", "--confirm", "10").code == 0
    # A console that has read the record and moved before: both connections are up.
    console = Session(loader.load(book), env)
    console.state()
    with console.journal.action_lock("step back"):
        pass
    console.journal.append("note", note="before the silence")
    proxy.freeze()

    said: list[str] = []

    async def roll():
        flag = flags.session_flag(console)
        return await actions.rollback(
            console, flag, reason="store silent drill", progress=said.append, attempts=1
        )

    try:
        outcome = asyncio.run(roll())
    finally:
        proxy.cut()
    text = "\n".join(said)
    assert outcome.ok, text
    assert (book.parent / "flag").read_text().strip() == "0"
    spill = (book.parent / ".cutover" / "journal.jsonl.spill").read_text()
    assert "rollback.intent" in spill and "rollback.done" in spill
    # One wait, of the rollback's own length, not the 10 s a call may otherwise take...
    assert text.count(f"no answer within {urgent.URGENT_S:g} s") == 1, text
    # ...and every later call of the rollback was not made at all.
    assert "not asked again" in text, text
    assert "s3cret-pw" not in text and "s3cret-pw" not in spill
