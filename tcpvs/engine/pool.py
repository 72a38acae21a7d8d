"""Connections to real servers, and the pool of idle keep-alive ones (KTCPVS tcp_vs_srvconn).

A BackendConnection belongs either to the pool (idle) or to one client-side protocol, its
`peer`, to which it hands every event. Idle connections expire after the service's
keep-alive timeout; the most recently used one is reused first (least likely to be stale).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tcpvs.table.addr import Address
from tcpvs.table.model import RealServer

if TYPE_CHECKING:
    from tcpvs.engine.frontend import Frontend

# Idle connections kept per server address; beyond this the oldest is closed.
MAX_IDLE_PER_SERVER = 512


class BackendConnection:
    """One TCP connection to a real server (an asyncio.Protocol, not derived from it for the
    same reason as Frontend)."""

    __slots__ = (
        "pool",
        "server",
        "transport",
        "peer",
        "reused",
        "idle_deadline",
        "early",
        "paused",
    )

    def __init__(self, pool: ServerPool, server: RealServer) -> None:
        self.pool = pool
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: Frontend | None = None
        self.reused = False  # served a request before: a failure may just mean it went stale
        self.idle_deadline = 0.0
        # Bytes (and b"" for EOF) a server sent before its first owner was attached: a server
        # may speak first, and the loop can deliver that before the connecting task resumes.
        self.early: list[bytes] | None = []
        # Our writes are over the transport's high-water mark: the client must stay paused.
        # Kept while no peer is attached, so a peer attached after its first write still knows.
        self.paused = False

    def attach(self, peer: Frontend) -> None:
        """Hand the connection to a client-side protocol (replaying anything that came early)."""
        self.peer = peer
        early, self.early = self.early, None
        for data in early or ():
            if data:
                peer.backend_data(data)
            elif not peer.backend_eof() and self.transport is not None:
                self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.server.bytes_out += len(data)
        peer = self.peer
        if peer is not None:
            peer.backend_data(data)
        elif self.early is not None:
            self.early.append(data)
        else:  # a server must not talk on an idle connection: it is no longer usable
            self.transport.close()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        peer = self.peer
        if peer is not None:
            return peer.backend_eof()
        if self.early is not None:
            self.early.append(b"")
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        peer, self.peer = self.peer, None
        if peer is not None:
            peer.backend_lost(self)
        else:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        self.paused = True
        if self.peer is not None:
            self.peer.pause_client_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.peer is not None:
            self.peer.resume_client_reading()

    def write(self, data: bytes) -> None:
        self.server.bytes_in += len(data)
        self.transport.write(data)  # type: ignore[union-attr]

    def close(self) -> None:
        self.peer = None
        if self.transport is not None:
            self.transport.close()


class ServerPool:
    """Idle keep-alive connections to real servers, keyed by server address."""

    def __init__(self) -> None:
        self._idle: dict[Address, list[BackendConnection]] = {}

    def acquire(self, server: RealServer) -> BackendConnection | None:
        conns = self._idle.get(server.address)
        while conns:
            conn = conns.pop()
            transport = conn.transport
            if transport is not None and not transport.is_closing():
                conn.reused = True
                conn.server = server  # the table may have been reloaded since it was pooled
                return conn
        return None

    async def connect(self, server: RealServer, timeout: float) -> BackendConnection:
        """A new connection; raises OSError or TimeoutError."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                lambda: BackendConnection(self, server), server.address.host, server.address.port
            )
        server.total_conns += 1
        return conn

    def release(self, conn: BackendConnection, deadline: float) -> None:
        """Put a connection whose response ended cleanly back for reuse until `deadline`."""
        conn.peer = None
        conn.idle_deadline = deadline
        conns = self._idle.setdefault(conn.server.address, [])
        conns.append(conn)
        if len(conns) > MAX_IDLE_PER_SERVER:
            conns.pop(0).close()

    def forget(self, conn: BackendConnection) -> None:
        conns = self._idle.get(conn.server.address)
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
