"""Team mode, the store's host gone silent (#18): packets go nowhere and nothing answers, so
every connection waits out its timeout. A rollback must not wait behind that more than once:
once the record is found unreachable, the move lock is not tried on a connection of its own;
the rollback goes ahead, spilled locally, and no message carries the DSN."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from cutover.record import urgent
from store_world import CutProxy, cli, env_for, write_book

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


class SilentHost:
    """Accepts connections, reads each client's startup message (declining TLS, so it is
    sent in the clear) and never answers it: a server that has stopped answering. Keeps the
    application_name of every connection that reached it."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.heard: list[str] = []
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._open.append(client)
            threading.Thread(target=self._hear, args=(client,), daemon=True).start()

    def _hear(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError, struct.error):
            first = _read(client, 8)
            if first == SSL_REQUEST:
                client.sendall(b"N")
                first = _read(client, 8)
            (length,) = struct.unpack("!i", first[:4])
            body = first[8:] + _read(client, length - 8)
            words = body.split(b"\0")
            pairs = dict(zip(words[0::2], words[1::2], strict=False))
            self.heard.append(pairs.get(b"application_name", b"").decode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self._open:
            s.close()


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def test_a_rollback_tries_no_lock_connection_once_the_store_is_found_silent(tmp_path, empty_dsn):
    book = write_book(tmp_path)
    assert cli(book, env_for(empty_dsn), "store", "init").code == 0
    proxy = CutProxy(empty_dsn)
    env = env_for(proxy.dsn(), user="ana")
    assert cli(book, env, "signoff", "looked", "--note", "ok").code == 0
    assert cli(book, env, "advance", "--confirm", "10").code == 0
    proxy.cut()

    silent = SilentHost()
    try:
        dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{silent.port}/cutover"
        rolled = cli(book, env_for(dsn, user="ana"), "rollback", "--reason", "drill", "--yes")
    finally:
        silent.close()
    assert rolled.code == 0, rolled.output
    assert (book.parent / "flag").read_text().strip() == "0"
    assert "rollback" in (book.parent / ".cutover" / "journal.jsonl.spill").read_text()
    assert "s3cret-pw" not in rolled.output and "cannot be reached" in rolled.output
    # The store was given a rollback's short wait, once (not a connect timeout per call).
    assert rolled.output.count(f"no answer within {urgent.URGENT_S:g} s") == 1, rolled.output
    assert "? % (the record cannot be read)" in rolled.output, rolled.output
    # The record's connection found the store silent; the lock's was never tried after it.
    assert "cutover record" in silent.heard, silent.heard
    assert "cutover locks" not in silent.heard, silent.heard
