"""A TCP proxy in front of the test PostgreSQL that injects network faults on demand.

It forwards bytes both ways and reads the server's replies as PostgreSQL protocol messages
(a type byte and a length; the test URLs turn TLS off so the stream is plain), which lets it
fail at exactly the worst moment:

* ``drop_replies_after_commit(n)``: the next ``n`` statement completions are swallowed, from
  ``CommandComplete`` (or ``PortalSuspended``, which ends asyncpg's row-limited execute of
  ``fetchrow``) up to the ``ReadyForQuery`` the server sends once the statement's
  transaction has ended (for a statement outside a transaction block: committed), and then
  the connection is cut: the client never learns that its write was applied.
* ``refuse_new_connections``: connections are accepted and closed at once (a server gone).
* ``cut_all()``: every open connection is cut now.

Real sockets, the real server and the real driver: nothing is simulated but the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import urlsplit, urlunsplit


class FaultProxy:
    """A loopback proxy to ``host:port``; ``url(database_url)`` points a URL at it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.refuse_new_connections = False
        self.replies_dropped = 0
        self._drops_left = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    @classmethod
    async def start(cls, database_url: str) -> FaultProxy:
        """A running proxy in front of the server of ``database_url``."""
        parts = urlsplit(database_url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def url(self, database_url: str) -> str:
        """``database_url`` through this proxy, TLS off (so the proxy can read the stream)."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rpartition("@")
        auth = netloc[0] + "@" if netloc[1] else ""
        query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
        return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{self.port}", parts.path, query, ""))

    def drop_replies_after_commit(self, count: int = 1) -> None:
        """Swallow the next ``count`` statement completions and cut those connections."""
        self._drops_left += count

    def cut_all(self) -> None:
        """Cut every open connection now."""
        for client, server in list(self._links):
            client.transport.abort()
            server.transport.abort()

    async def close(self) -> None:
        """Stop listening and cut everything."""
        if self._server is not None:
            self._server.close()
        self.cut_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refuse_new_connections:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        link = (client_w, server_w)
        self._links.add(link)
        directions = [
            asyncio.ensure_future(self._pipe(client_r, server_w)),
            asyncio.ensure_future(self._replies(server_r, client_w, link)),
        ]
        try:  # when one side closes, the whole link closes (as a real network path would)
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for direction in directions:
                direction.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            self._links.discard(link)
            client_w.transport.abort()
            server_w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    async def _replies(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        held: list[bytes] = []  # from an armed drop's CommandComplete up to its ReadyForQuery
        while True:
            header = await reader.readexactly(5)
            kind, length = header[:1], struct.unpack("!i", header[1:])[0]
            message = header + await reader.readexactly(length - 4)
            # CommandComplete, or PortalSuspended (fetchrow/fetchval execute with a row limit of 1)
            if kind in (b"C", b"s") and self._drops_left > 0 and not held:
                self._drops_left -= 1
                held.append(message)
                continue
            if not held:
                writer.write(message)
                await writer.drain()
                continue
            held.append(message)
            if kind == b"Z":  # the statement's transaction has ended (committed): lose the reply
                self.replies_dropped += 1
                for side in link:
                    side.transport.abort()
                return
