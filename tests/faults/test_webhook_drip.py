"""A webhook that drips its answer is failed and said at once, not at stop. Once, a receiver
sending a byte every few seconds kept a post open for 25 s (httpx's timeout is per read),
silently, and was only reported when the watcher stopped."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cutover.sources.notify import Notifier, Webhook


@pytest.fixture
def dripping() -> Iterator[str]:
    """Answers every request with headers, then one byte of a 200-byte body every 0.2 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n")
            for _ in range(200):
                if stop.is_set():
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.2)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        server.close()


async def test_a_dripping_webhook_is_failed_within_its_timeout_and_said(dripping: str) -> None:
    said: list[str] = []
    notifier = Notifier(
        [Webhook("CUTOVER_HOOK", dripping)], say=said.append, timeout_s=1.0, backoff_s=(30.0,)
    )
    notifier.start()
    notifier.send("trigger stuck_burst FIRED")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0  # the drip alone would take 40 s
    while not said and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await notifier.aclose(drain_s=0)
    assert said, "the stalled delivery was never said"
    assert "CUTOVER_HOOK failed (no answer within 1s)" in said[0]
    assert dripping not in "\n".join(said)
