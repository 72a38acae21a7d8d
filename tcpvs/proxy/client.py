"""ClientConnection: the I/O edge of one client connection.

It is the asyncio protocol of the client's socket and the Port of the connection's exchange
(tcpvs/exchange): socket events become exchange events, through the two relays that own the
bytes of each direction, and the exchange's actions become socket operations here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, cast

from tcpvs.exchange.base import Exchange, Port
from tcpvs.exchange.http1 import HttpExchange
from tcpvs.exchange.tcp import TcpExchange
from tcpvs.proxy.relay import ClientToServer, Relay, ServerToClient
from tcpvs.proxy.upstream import ServerConnection
from tcpvs.table.addr import format_address
from tcpvs.table.model import RealServer

if TYPE_CHECKING:
    from tcpvs.proxy.listener import ServiceListener

log = logging.getLogger("tcpvsd")


class ClientConnection(Port):
    """One client connection of a running service (an asyncio.Protocol, not derived from it:
    the loop only calls its methods, and the compiled build makes it an extension type)."""

    def __init__(self, listener: ServiceListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        # made when the client connects (the exchange first: the relays report to it)
        self.exchange: Exchange
        self.inbound: ClientToServer
        self.outbound: ServerToClient
        self.server_conn: ServerConnection | None = None
        self.connecting: asyncio.Task | None = None
        self.tunneling = False
        self.tunnel_ends = 0  # directions of the tunnel that have ended

    # -- the client socket's events --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        client = transport.get_extra_info("peername") or ("", 0)
        listener = self.listener
        service = listener.service
        listener.connections.add(self)
        stats = service.stats
        stats.conns += 1
        stats.total_conns += 1
        kind = HttpExchange if service.speaks_http else TcpExchange
        exchange = self.exchange = kind(listener, self, client)
        self.inbound = ClientToServer(self, listener, exchange)
        self.outbound = ServerToClient(self, listener, exchange)
        self.inbound.set_source(self.transport, None)
        self.outbound.set_destination(self.transport, None, False)
        if stats.conns > service.settings.maxclients:
            exchange.refuse()
        else:
            exchange.start()

    def data_received(self, data: bytes) -> None:
        self.inbound.received(data)

    def eof_received(self) -> bool:
        self.inbound.source_ended()
        # The exchange closes the connection when it is done with it; over TLS the loop's
        # SSL layer closes it at once whatever we say (it has no half-close).
        return not self.listener.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.listener.connections.discard(self)
        self.listener.service.stats.conns -= 1
        self.inbound.close()
        self.outbound.close()
        self.exchange.lost()

    def pause_writing(self) -> None:
        self.outbound.set_blocked(True)  # the client reads slower than the server sends

    def resume_writing(self) -> None:
        self.outbound.set_blocked(False)

    # -- the exchange's actions (Port) -----------------------------------------------------------

    def send_client(self, data: bytes) -> None:
        self.outbound.write(data)

    def send_server(self, data: bytes) -> None:
        self.inbound.write(data)

    def transferred(self) -> tuple[int, int]:
        return self.inbound.client_bytes, self.outbound.client_bytes

    def pass_to_client(self, nbytes: int) -> None:
        self.outbound.pass_through(nbytes)

    def open_server(self, server: RealServer, fresh: bool = False) -> bool:
        if not fresh:
            conn = self.listener.pool.acquire(server, self.listener.service)
            if conn is not None:
                self._attach(conn)
                return True
        self.connecting = asyncio.get_running_loop().create_task(self._connect(server))
        return False

    async def _connect(self, server: RealServer) -> None:
        service = self.listener.service
        upstream = service.upstream
        try:
            conn = await self.listener.pool.connect(
                server,
                service.settings.connect_timeout,
                None if upstream is None else upstream.context,
            )
        except (OSError, TimeoutError) as exc:
            self.connecting = None
            if isinstance(exc, ssl.SSLError):  # say why: a plain refusal needs no words
                where = f"service {service.ident}: server {format_address(server.address)}"
                why = getattr(exc, "verify_message", None) or exc.reason or exc
                log.warning("%s: TLS handshake failed: %s", where, why)
            if self.transport is not None:
                self.exchange.server_failed(server)
            return
        self.connecting = None
        if self.transport is None:  # the client left meanwhile
            conn.close()
        elif conn.transport is None:  # accepted, then closed before we could use it
            self.exchange.server_failed(server)
        else:
            self._attach(conn)
            self.exchange.server_ready(False)
            conn.replay_early()

    def _attach(self, conn: ServerConnection) -> None:
        self.server_conn = conn
        conn.peer, conn.reader, conn.writer = self, self.outbound, self.inbound
        self.inbound.set_destination(conn.transport, conn.server, conn.write_paused)
        self.outbound.set_source(conn.transport, conn.server)

    def _detach(self) -> ServerConnection | None:
        conn, self.server_conn = self.server_conn, None
        if conn is not None:
            conn.peer = conn.reader = conn.writer = None
            self.inbound.set_destination(None, None, False)
            self.outbound.set_source(None, None)
        return conn

    def release_server(self) -> None:
        conn = self._detach()
        if conn is not None:
            listener = self.listener
            keepalive = listener.service.settings.keepalive_timeout
            listener.pool.release(conn, listener.now + keepalive)

    def drop_server(self) -> None:
        connecting, self.connecting = self.connecting, None
        if connecting is not None:
            connecting.cancel()
        conn = self._detach()
        if conn is not None:
            conn.close()

    def hold_client(self, hold: bool) -> None:
        self.inbound.hold(hold)

    def tunnel(self) -> None:
        self.tunneling = True
        self.inbound.pass_through(-1)
        self.outbound.pass_through(-1)

    def close_client(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort_client(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- what the relays and the server connection report ----------------------------------------

    def relay_passed(self, relay: Relay, rest: bytes) -> None:
        exchange = self.exchange
        if not self.tunneling:
            exchange.passed(rest)
            return
        self.tunnel_ends += 1
        if self.tunnel_ends == 2:
            exchange.tunnel_ended()

    def relay_failed(self, relay: Relay) -> None:
        self.exchange.broken()

    def server_lost(self, conn: ServerConnection) -> None:
        if conn is self.server_conn:
            self._detach()
            self.exchange.server_ended()

    # -- the listener's calls --------------------------------------------------------------------

    def expire(self) -> None:
        self.exchange.timeout()

    def shutdown(self) -> None:
        self.exchange.shutdown()

    def abort(self) -> None:
        """Cut at once (a drain that ran out of time)."""
        self.abort_client()
        self.drop_server()
