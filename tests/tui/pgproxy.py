"""A TCP door to the embedded Postgres that a test can shut and open again: the database
going away mid-session, as a dropped network or a failover does, without stopping the server
the rest of the suite shares."""

from __future__ import annotations

import asyncio
import contextlib
import os
from urllib.parse import parse_qs, urlsplit


class PgProxy:
    def __init__(self, server_uri: str) -> None:
        host = parse_qs(urlsplit(server_uri).query)["host"][0]
        self.socket_path = os.path.join(host, ".s.PGSQL.5432")
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()
        self.sent = bytearray()  # every byte the clients sent, for a test to count what
        self.most_at_once = 0  # the most clients connected at one time
        self.frozen = False  # see freeze()

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def refuse_new(self) -> None:
        """Stop taking connections; those open stay open (a server that is going away)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def shut(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def say_fatal(self) -> None:
        """Send every client the error a server sends an idle connection it is about to end
        (a fast shutdown, pg_terminate_backend), and leave the socket open: the moment
        between that message and the close, when a client may already be sending its next
        query."""
        for writer in self._clients:
            writer.write(fatal_message("terminating connection due to administrator command"))

    def go_away(self) -> None:
        """A server shutting down: refuse new connections, and tell every client its
        connection is ending, then close it (a query running on it is cut off)."""
        self.refuse_new()
        for writer in list(self._clients):
            writer.write(fatal_message("terminating connection due to administrator command"))
            writer.close()  # after what was written is sent

    def freeze(self) -> None:
        """The network goes silent without a word (a partition, a blackholing firewall):
        nothing more crosses in either direction, and connections made from now on are
        taken and never answered. No connection is closed, so nothing says it is gone."""
        self.frozen = True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.frozen:
            self._writers.add(writer)  # held open, in silence, until shut()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        self._clients.add(writer)
        self.most_at_once = max(self.most_at_once, len(self._clients))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if self.frozen:
                        continue  # lost on the way
                    if src is reader:
                        self.sent += data
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._clients.discard(writer)


def fatal_message(text: str) -> bytes:
    """A FATAL ErrorResponse (57P01, admin shutdown) in the wire protocol's framing."""
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P01"), (b"M", text))
    )
    body = fields + b"\0"
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body
