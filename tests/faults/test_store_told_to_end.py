"""Team mode: the state store's server ends the connection (a restart, pg_terminate_backend)
and its FATAL reaches the idle connection a moment before the close. A call made in that
moment failed inside asyncpg (InternalClientError: "cannot switch to state 15; another
operation (2) is in progress"), and that error was not one the store knew: it escaped the
call raw, past every caller's handling of an unreachable store, and the connection was kept.
Now it is the store unreachable, as a cut connection is, and the link connects again."""

from __future__ import annotations

import time

import pytest

from cutover.record.store.base import StoreUnavailable
from cutover.record.store.pglink import Link
from store_world import CutProxy


async def _one(conn) -> int:
    return await conn.fetchval("SELECT 1")


def test_a_call_on_a_connection_told_to_end_is_the_store_unreachable_and_it_reconnects(
    empty_dsn: str,
) -> None:
    proxy = CutProxy(empty_dsn)
    link = Link(proxy.dsn(), name="test", words=lambda text: text)
    try:
        assert link.call(_one) == 1
        proxy.say_fatal()
        time.sleep(0.3)  # taken in while idle, before the next call is sent
        with pytest.raises(StoreUnavailable):
            link.call(_one)
        deadline = time.monotonic() + 15
        while True:
            try:
                assert link.call(_one) == 1
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the link never connected again"
                time.sleep(0.2)
    finally:
        link.close()
        proxy.cut()
