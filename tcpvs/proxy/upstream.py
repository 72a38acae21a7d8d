"""Connections to real servers, and the pool of idle keep-alive ones (KTCPVS tcp_vs_srvconn).

A ServerConnection belongs either to the pool (idle) or to one client connection, its `peer`,
whose relays read and write it. Idle connections expire after the service's keep-alive
timeout; the most recently used one is reused first (least likely to be stale).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, cast

from tcpvs.table.model import RealServer, Service

if TYPE_CHECKING:
    from tcpvs.proxy.client import ClientConnection
    from tcpvs.proxy.relay import Relay

# Idle connections kept per server address; beyond this the oldest is closed.
MAX_IDLE_PER_SERVER = 512


class ServerConnection:
    """One TCP connection to a real server (an asyncio.Protocol, not derived from it: the loop
    only calls its methods, and the compiled build makes it an extension type)."""

    def __init__(self, pool: ServerPool, server: RealServer, key: object) -> None:
        self.pool = pool
        self.server = server
        self.key = key  # its pool's: what it was opened to (pool_key)
        self.transport: asyncio.Transport | None = None
        self.peer: ClientConnection | None = None
        # the peer's relays: the one reading this connection, the one writing to it
        self.reader: Relay | None = None
        self.writer: Relay | None = None
        self.reused = False  # served a request before: a failure may just mean it went stale
        self.idle_deadline = 0.0
        # Bytes (and b"" for the end) a server sent before its first peer took it: a server
        # may speak first, and the loop can deliver that before the connecting task resumes.
        self.early: list[bytes] | None = []
        # Our writes are over the transport's high-water mark. Kept while no peer is attached,
        # so a peer attached after its first write still knows.
        self.write_paused = False

    def replay_early(self) -> None:
        """The first peer took the connection: hand it what came before."""
        early, self.early = self.early, None
        for data in early or ():
            reader = self.reader
            if reader is None:  # what came before made the peer give it up
                return
            if data:
                reader.received(data)
            else:
                reader.source_ended()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is not None:
            reader.received(data)
        elif self.early is not None:
            self.early.append(data)
        elif self.transport is not None:  # a server talking on an idle connection: unusable
            self.transport.close()

    def eof_received(self) -> bool:
        # Kept half-open for the peer to close when its exchange is done with it; over TLS
        # the loop's SSL layer closes it at once whatever we say (it has no half-close).
        reader = self.reader
        if reader is not None:
            reader.source_ended()
            return not self.server.tls
        if self.early is not None:
            self.early.append(b"")
            return not self.server.tls
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        peer, self.peer = self.peer, None
        self.reader = self.writer = None
        if peer is not None:
            peer.server_lost(self)
        else:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.writer is not None:
            self.writer.set_blocked(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.writer is not None:
            self.writer.set_blocked(False)

    def close(self) -> None:
        self.peer = self.reader = self.writer = None
        if self.transport is not None:
            self.transport.close()


def pool_key(server: RealServer, tls: ssl.SSLContext | None) -> object:
    """What a pooled connection must have been opened to, to serve `server`: its address,
    and over TLS the name it verified and the context (settings, CAs) it was made with, so a
    reload that changes them never gets a connection opened the old way."""
    if not server.tls:
        return server.address
    return (server.address, server.tls_name, tls)


class ServerPool:
    """Idle keep-alive connections to real servers, keyed by what they were opened to."""

    def __init__(self) -> None:
        self._idle: dict[object, list[ServerConnection]] = {}

    def acquire(self, server: RealServer, service: Service) -> ServerConnection | None:
        """An idle connection opened as `server` (of `service`) is reached now, if any."""
        if server.tls:
            upstream = service.upstream
            conns = self._idle.get(pool_key(server, None if upstream is None else upstream.context))
        else:
            conns = self._idle.get(server.address)  # (pool_key's, without a call: per request)
        while conns:
            conn = conns.pop()
            transport = conn.transport
            if transport is not None and not transport.is_closing():
                conn.reused = True
                conn.server = server  # the table may have been reloaded since it was pooled
                return conn
        return None

    async def connect(
        self, server: RealServer, timeout: float, tls: ssl.SSLContext | None = None
    ) -> ServerConnection:
        """A new connection (over TLS with `tls` when the server is a `tls` one, its handshake
        within `timeout` too); raises OSError (ssl.SSLError among them) or TimeoutError."""
        loop = asyncio.get_running_loop()
        context = tls if server.tls else None
        name = (server.tls_name or server.address.host) if context is not None else None
        key = pool_key(server, tls)
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                lambda: cast(asyncio.Protocol, ServerConnection(self, server, key)),
                server.address.host,
                server.address.port,
                ssl=context,
                server_hostname=name,
            )
        conn = cast(ServerConnection, protocol)
        server.total_conns += 1
        return conn

    def release(self, conn: ServerConnection, deadline: float) -> None:
        """Put a connection whose response ended cleanly back for reuse until `deadline`."""
        conn.idle_deadline = deadline
        conns = self._idle.setdefault(conn.key, [])
        conns.append(conn)
        if len(conns) > MAX_IDLE_PER_SERVER:
            conns.pop(0).close()

    def forget(self, conn: ServerConnection) -> None:
        conns = self._idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)

    def expire(self, now: float) -> None:
        """Close idle connections whose keep-alive time is over."""
        for conns in self._idle.values():
            while conns and conns[0].idle_deadline <= now:
                conns.pop(0).close()

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
