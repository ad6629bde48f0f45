"""A rollback while the team's state store has gone silent (#18): its host drops every packet,
so nothing is refused and each call waits out its timeout. Measured from the rollback's call
to the flag reading 0 %, in a console-like process that was connected (record and lock
connections up), with a file flag (no platform time in it):

- baseline: the same rollback with the store answering;
- ours: the store silent (a rollback gives it record/urgent.URGENT_S once);
- before: the store silent with the rollback's short wait switched off (every call waits
  the ordinary call timeout), interleaved round by round.

Run: .venv/bin/python bench/rollback_silent_store.py   ROUNDS=5
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the store tests' world: runbook and proxy

from fixtures import Row, Samples, _embedded_postgres, print_table  # noqa: E402

from cutover.judge.session import Session  # noqa: E402
from cutover.record import urgent  # noqa: E402
from cutover.runbook import loader  # noqa: E402
from cutover.traffic import actions, flags  # noqa: E402
from store_world import CutProxy, cli, env_for, write_book  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))


def one(folder: Path, dsn: str, *, silent: bool, short: bool) -> float:
    """Seconds from the rollback's start to the flag file reading 0 (a schema of its own)."""
    book = write_book(folder, schema=folder.name)
    assert cli(book, env_for(dsn), "store", "init").code == 0
    proxy = CutProxy(dsn)
    env = env_for(proxy.dsn(), user="ana")
    assert cli(book, env, "signoff", "looked", "--note", "ok").code == 0
    assert cli(book, env, "advance", "--confirm", "10").code == 0
    console = Session(loader.load(book), env)
    console.state()
    with console.journal.action_lock("step back"):
        pass
    if silent:
        proxy.freeze()
    flag_file = book.parent / "flag"

    async def roll() -> float:
        flag = flags.session_flag(console)
        started = time.perf_counter()
        with contextlib.ExitStack() as waits:
            if not short:  # no urgency seen by the store's calls: the path before it
                waits.enter_context(mock.patch.object(urgent, "current", lambda: None))
            await actions.rollback(console, flag, reason="bench", attempts=1)
        assert flag_file.read_text().strip() == "0"
        return time.perf_counter() - started

    try:
        return asyncio.run(roll())
    finally:
        proxy.cut()
        console.store.close()


def main() -> None:
    print_table(table_rows(ROUNDS), f"rollback with the state store gone silent (n={ROUNDS})")


def table_rows(rounds: int) -> list[Row]:
    ep = _embedded_postgres()
    with tempfile.TemporaryDirectory(prefix="cutover-bench-silent-") as tmp:
        server = ep.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            return measure(Path(tmp), server.get_uri(), rounds)
        finally:
            server.cleanup()


def measure(tmp: Path, dsn: str, rounds: int) -> list[Row]:
    answering, silent, before = Samples(), Samples(), Samples()
    for n in range(rounds):
        for samples, is_silent, short in (
            (answering, False, True),
            (silent, True, True),
            (before, True, False),
        ):
            folder = tmp / f"r{n}_{int(is_silent)}{int(short)}"
            folder.mkdir()
            samples.add(one(folder, dsn, silent=is_silent, short=short))
            print(f"  round {n + 1}: silent={is_silent} short={short}: {samples.values[-1]:.2f} s")
    return [
        Row(
            "rollback, store silent → flag 0 %",
            silent,
            answering,
            "store answering",
            unit="s",
            goal="≤ 2.5 s",
            met=silent.median <= 2.5,
        ),
        Row(
            "  the same without the rollback's short wait",
            before,
            answering,
            "store answering",
            unit="s",
            note="the path before record/urgent.py",
        ),
    ]


if __name__ == "__main__":
    main()
