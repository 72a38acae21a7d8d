"""TcpExchange: one client connection of a raw TCP service (any protocol), sans-IO.

One server is chosen per connection (a refused one: the next), then bytes pass both ways as
they are, each end passed on as a half-close, until both ways have ended. A service with SNI
rules (TLS passthrough) first reads the client's ClientHello, without taking it: the rule its
server name matches gives the candidate servers, and the hello goes to the chosen one first.

  HELLO       reading a ClientHello (SNI rules)   client_timeout
  CONNECTING  choosing and reaching a server      connect_timeout + 1 s
              (client bytes kept, bounded)
  TUNNEL      bytes both ways                     read_timeout, activity starts it again
  CLOSED
"""

from __future__ import annotations

from tcpvs.exchange.base import CLOSED, MAX_PENDING, Exchange, Port, Site
from tcpvs.table.counters import (
    BAD_REQUEST,
    CLIENT_GONE,
    CLIENT_TIMEOUT,
    NO_SERVER,
    OK,
    REFUSED,
    SERVER_CLOSED,
    TUNNEL_TIMEOUT,
)
from tcpvs.table.model import RealServer
from tcpvs.tls.clienthello import ClientHelloError, parse_client_hello

CONNECTING, TUNNEL, HELLO = range(3)


class TcpExchange(Exchange):
    def __init__(self, site: Site, port: Port, client: tuple) -> None:
        super().__init__(site, port)
        self.ctx.client = client
        self.pending = bytearray()  # client bytes that came before the server connection
        self.candidates: list[RealServer] = []  # the servers this connection may go to

    def start(self) -> None:
        self._open()
        service = self.site.service
        if service.sni_rules:
            self._go(HELLO, False)
        else:
            self._dispatch(service.servers)

    def patience(self) -> float:
        settings = self.site.service.settings
        state = self.state
        if state == CONNECTING:
            return settings.connect_timeout + 1
        if state == HELLO:
            return settings.client_timeout
        return settings.read_timeout if state == TUNNEL else 0.0

    def _dispatch(self, candidates: list[RealServer]) -> None:
        self.candidates = candidates
        self._go(CONNECTING, False)
        self._connect(self._choose(candidates), NO_SERVER)

    def _read_hello(self) -> None:
        """Route by the ClientHello once it is all in: its server name's SNI rule, else the
        default rule (`sni "*"`), else every server for a name no rule has; a connection
        without a readable hello or a name goes nowhere but to the default rule."""
        service = self.site.service
        try:
            hello = parse_client_hello(self.pending)
        except ClientHelloError:
            name = None
        else:
            if hello is None:
                return  # more to come (the parser decides within MAX_LENGTH bytes)
            name = hello.server_name
        rule = service.route_sni(name)
        if rule is not None:
            self._dispatch(rule.servers)
        elif name is not None:
            self._dispatch(service.servers)
        else:
            service.stats.errors += 1
            self._end(BAD_REQUEST)
            self._close()

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
        total = self.site.service.stats.total_conns
        self._connect(self._next_try(self.candidates, total), REFUSED)

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
        state = self.state
        if state == CONNECTING:
            self.pending += data
            if len(self.pending) > MAX_PENDING:
                self.port.hold_client(True)
        elif state == HELLO:
            self.pending += data
            self._read_hello()

    def client_ended(self) -> None:
        """The end is passed on once the tunnel runs (the client relay remembers it); one
        that comes before the ClientHello is whole ends the connection."""
        if self.state == HELLO:
            self.site.service.stats.errors += 1
            self._end(BAD_REQUEST)
            self._close()

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
        state = self.state
        if state != CLOSED:
            self._end(CLIENT_TIMEOUT if state == HELLO else TUNNEL_TIMEOUT)
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
