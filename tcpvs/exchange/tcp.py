"""TcpExchange: one client connection of a raw TCP service (any protocol), sans-IO.

One server is chosen per connection (a refused one: the next), then bytes pass both ways as
they are, each end passed on as a half-close, until both ways have ended.

  CONNECTING  choosing and reaching a server      connect_timeout + 1 s
              (client bytes kept, bounded)
  TUNNEL      bytes both ways                     read_timeout, activity starts it again
  CLOSED
"""

from __future__ import annotations

from tcpvs.exchange.base import CLOSED, MAX_PENDING, Exchange, Port, Site
from tcpvs.table.counters import (
    CLIENT_GONE,
    NO_SERVER,
    OK,
    REFUSED,
    SERVER_CLOSED,
    TUNNEL_TIMEOUT,
)
from tcpvs.table.model import RealServer

CONNECTING, TUNNEL = range(2)


class TcpExchange(Exchange):
    def __init__(self, site: Site, port: Port, client: tuple) -> None:
        super().__init__(site, port)
        self.ctx.client = client
        self.pending = bytearray()  # client bytes that came before the server connection

    def start(self) -> None:
        self._go(CONNECTING, False)
        self._open()
        self._dispatch()

    def patience(self) -> float:
        settings = self.site.service.settings
        if self.state == CONNECTING:
            return settings.connect_timeout + 1
        return settings.read_timeout if self.state == TUNNEL else 0.0

    def _dispatch(self) -> None:
        self._connect(self._choose(self.site.service.servers), NO_SERVER)

    def _connect(self, server: RealServer | None, cause: int) -> None:
        """Reach `server`; None: there is none to reach (`cause`), the client is closed."""
        if server is None:
            self.site.service.stats.errors += 1
            self._end(cause)
            self._close()
            return
        self.target = server
        self.port.open_server(server, True)  # a new connection: raw ones are never pooled

    def server_failed(self, server: RealServer) -> None:
        self._failed(server)
        service = self.site.service
        self._connect(self._next_try(service.servers, service.stats.total_conns), REFUSED)

    def server_ready(self, reused: bool) -> None:
        assert self.target is not None, "ready only after a server was asked for"
        self._take(self.target)
        self.t_connect = self.site.clock()
        if self.pending:
            self.port.send_server(bytes(self.pending))
            self.pending.clear()
        self._go(TUNNEL, True)
        self.port.hold_client(False)
        self.port.tunnel()

    def client_data(self, data: bytes) -> None:
        if self.state == CONNECTING:
            self.pending += data
            if len(self.pending) > MAX_PENDING:
                self.port.hold_client(True)

    def client_ended(self) -> None:
        """The end is passed on once the tunnel runs (the client relay remembers it)."""

    def server_data(self, data: bytes) -> None:
        """Never: server bytes only ever pass through the tunnel."""

    def server_ended(self) -> None:
        self._end(OK)
        self._close()

    def passed(self, rest: bytes) -> None:
        """Never: passing ends only with the tunnel."""

    def tunnel_ended(self) -> None:
        self._end(OK)
        self._close()

    def broken(self) -> None:
        self._end(SERVER_CLOSED)
        self._abort()

    def timeout(self) -> None:
        if self.state != CLOSED:
            self._end(TUNNEL_TIMEOUT)
            self._abort()

    def lost(self) -> None:
        self._end(CLIENT_GONE)
        self._finish()

    def _end(self, cause: int) -> None:
        """The connection ends (`cause`): recorded, with the server that served it, if any."""
        self._record(0, cause, self.server)

    def shutdown(self) -> None:
        """A raw relay has no clean point to stop at: it may finish within the drain time,
        after which the listener cuts it."""
