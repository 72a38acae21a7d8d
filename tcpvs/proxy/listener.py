"""ServiceListener: the listening socket of one running service and its connections.

Timeouts are deadlines stored on each exchange and checked by one coarse ticker per
listener (like the KTCPVS master thread's once-a-second pass), so a request costs a float
store rather than a timer created and cancelled.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from tcpvs.compiled import WHY_NOT_OWN_TLS
from tcpvs.errors import TableError
from tcpvs.exchange.base import Site
from tcpvs.proxy.upstream import ServerPool
from tcpvs.table.addr import format_address
from tcpvs.table.model import RealServer, Service
from tcpvs.tls import openssl, tickets
from tcpvs.tls.certs import Certificate, CertStore
from tcpvs.tls.settings import TLS_VERSIONS, server_context

if TYPE_CHECKING:
    from tcpvs.proxy.client import ClientConnection


def own_tls_layer(context: ssl.SSLContext) -> Callable[[Any, Any], asyncio.Protocol] | None:
    """The maker of tcpvs's own TLS layer over `context`, (listener, app) -> protocol, on the
    running loop; None when it does not run (the pure-Python engine, not compiled, OpenSSL
    out of ctypes' reach): then the loop's TLS layer does the work, as before."""
    if WHY_NOT_OWN_TLS:
        return None
    try:
        pointer = openssl.ssl_ctx_pointer(context)
    except openssl.OpenSSLUnavailable:
        return None
    from tcpvs._fast.tlslayer import TlsLayer, prepare

    prepare(pointer)
    loop = asyncio.get_running_loop()
    return lambda listener, app: cast(asyncio.Protocol, TlsLayer(listener, app, pointer, loop))


TICK_SECONDS = 0.25
LISTEN_BACKLOG = 2048  # KTCPVS max_backlog


class ServiceListener(Site):
    """The listening socket of one running service, its connections, its server pool and the
    clock its exchanges read (the Site they run on)."""

    def __init__(self, service: Service, reuse_port: bool = False) -> None:
        super().__init__(service)
        # SO_REUSEPORT: tcpvsd's worker processes each listen on the same address and the
        # kernel spreads new connections over them.
        self.reuse_port = reuse_port
        self.pool = ServerPool()
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._redirect: RealServer | None = None
        self._tls_context: ssl.SSLContext | None = None  # a TLS service's, made at open()
        # tcpvs's own TLS layer (tcpvs/_fast/tlslayer.pyx), when it runs: the connections in
        # their handshake (cut by the ticker at their deadline), and each certificate's SSL_CTX
        self.handshaking: set[Any] = set()
        self._contexts: dict[Certificate, int] = {}
        self._contexts_of: CertStore | None = None
        # Who decides about a server failing requests in a row (the Switch: eject it)
        self.on_outlier: Callable[[Service, RealServer, str], None] | None = None
        # Imported here, not at the top: the compiled protocols import this module for its type.
        from tcpvs.proxy.client import ClientConnection

        self._protocol = ClientConnection

    async def open(self) -> None:
        """Bind and listen; TableError with the reason if the address cannot be used."""
        loop = asyncio.get_running_loop()
        service = self.service
        host, port = service.listen
        context = None
        factory = self._protocol_factory
        self.tls = service.certs is not None
        if self.tls:
            # Tickets are OpenSSL's business on this first context, whichever certificate
            # is served: sealed with the process's rotating keys, which every worker shares
            # (through tcpvs's TLS layer's callback, or tcpvs.tls.tickets' with the loop's).
            context = self._tls_context = server_context()
            self.follow_tls()
            layer = own_tls_layer(context)
            if layer is not None:  # tcpvs's TLS layer in C: the loop sees plain TCP

                def factory() -> asyncio.Protocol:
                    return layer(self, self._protocol(self))

                context = None
            else:
                # The loop's own TLS layer (uvloop's, memory BIOs) runs each handshake within
                # client_timeout; the certificate is the service's of the moment.
                context.sni_callback = self._sni_callback
                tickets.install(context)
        try:
            self._server = await loop.create_server(
                factory,
                host,
                port,
                family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                backlog=LISTEN_BACKLOG,
                reuse_address=True,
                reuse_port=self.reuse_port,
                ssl=context,
                ssl_handshake_timeout=service.settings.client_timeout if context else None,
            )
        except OSError as exc:
            where = format_address(self.service.listen)
            raise TableError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        self.service.running = True
        self.now = loop.time()
        self._tick()

    def adopt(self, service: Service) -> None:
        """Serve a reloaded service object on the same socket (new requests use it)."""
        self.service.running = False
        self.service = service
        self._redirect = None
        service.running = True

    def redirect_server(self) -> RealServer | None:
        """The service's `redirect` address as a server (KTCPVS's last resort)."""
        address = self.service.redirect
        if address is None:
            return None
        if self._redirect is None or self._redirect.address != address:
            self._redirect = RealServer(address)
        return self._redirect

    def follow_tls(self) -> None:
        """New handshakes take the service's lowest TLS version as it is now (an SSL object
        takes its versions from the listener's context, not from the certificate's)."""
        certs = self.service.certs
        if self._tls_context is not None and certs is not None:
            self._tls_context.minimum_version = TLS_VERSIONS[certs.tls_min]

    def _protocol_factory(self) -> asyncio.Protocol:
        return cast(asyncio.Protocol, self._protocol(self))

    def certificate_for(self, server_name: str | None) -> int:
        """The SSL_CTX (its address) of the certificate to serve for `server_name`, for the
        own TLS layer's servername callback; 0: keep the listener's context."""
        certs = self.service.certs
        if certs is None:
            return 0
        if certs is not self._contexts_of:  # reloaded: the old certificates' are dropped
            self._contexts, self._contexts_of = {}, certs
        cert = certs.choose(server_name)
        pointer = self._contexts.get(cert)
        if pointer is None:
            pointer = self._contexts[cert] = openssl.ssl_ctx_pointer(cert.context)
        return pointer

    def handshake_started(self, layer: Any) -> None:
        layer.deadline = self.now + self.service.settings.client_timeout
        self.handshaking.add(layer)

    def handshake_ended(self, layer: Any) -> None:
        self.handshaking.discard(layer)

    def _sni_callback(
        self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        """Each handshake, SNI or not: serve the certificate of the service as it is now (a
        reload changes it for new handshakes; open connections keep theirs)."""
        certs = self.service.certs
        if certs is not None:
            connection.context = certs.choose(server_name).context

    def outlier(self, server: RealServer, reason: str) -> None:
        if self.on_outlier is not None:
            self.on_outlier(self.service, server, reason)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = now = loop.time()
        for conn in [c for c in self.connections if c.exchange.expired(now)]:
            conn.expire()
        for layer in [h for h in self.handshaking if h.deadline <= now]:
            layer.abort()  # a handshake that stalls holds a descriptor
        self.pool.expire(now)
        if self._server is not None or self.connections or self.handshaking:
            self._ticker = loop.call_later(TICK_SECONDS, self._tick)
        else:
            self._ticker = None

    def close(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their response."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.service.running = False
        for conn in list(self.connections):
            conn.shutdown()
        for layer in list(self.handshaking):  # not a client yet: nothing to finish
            layer.abort()
        self.pool.close()

    async def drain(self, seconds: float) -> None:
        """Wait until every connection has ended, at most `seconds`; then cut the rest."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while self.connections and loop.time() < end:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        self.pool.close()
        if self._ticker is not None and self._server is None and not self.connections:
            self._ticker.cancel()
            self._ticker = None
