"""Client-side protocols: the shared base (accounting, deadlines, choosing and connecting to a
real server, the byte tunnel) and RawFrontend, the relay of raw TCP services.

The HTTP protocol (tcpvs/engine/http.py) builds on the same base and turns into a tunnel after
a `101 Switching Protocols`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tcpvs.engine.pool import BackendConnection
from tcpvs.engine.splice import SPLICE_THRESHOLD, SpliceTunnel
from tcpvs.sched.base import ScheduleContext
from tcpvs.table.model import RealServer, Service

if TYPE_CHECKING:
    from tcpvs.engine.listener import ServiceListener

# Client bytes buffered while no server takes them yet, before the client is paused.
MAX_PENDING = 256 * 1024


def eligible(
    servers: Sequence[RealServer], tried: list[RealServer], now: float
) -> Sequence[RealServer]:
    """Servers a scheduler may pick: weight > 0, not failed for this request, not marked down.

    The common case (first try, every server up) hands over `servers` itself rather than a
    copy: schedulers take a read-only Sequence, and this runs for every request."""
    if not tried:
        for s in servers:
            if s.weight <= 0 or s.down_until > now:
                break
        else:
            return servers
    return [s for s in servers if s.weight > 0 and s.down_until <= now and s not in tried]


class Frontend:
    """One client connection of a running service (an asyncio.Protocol).

    It does not derive from asyncio.Protocol: the loop only calls its methods, and the
    compiled build (frontend.pxd) makes it an extension type, which cannot have a Python base.
    """

    def __init__(self, listener: ServiceListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.client: tuple = ("", 0)
        self.backend: BackendConnection | None = None
        self.deadline = 0.0  # loop time after which `expire()` is called; 0 = none
        self.tunnel = False
        self._client_eof = False
        self._reading_paused = False
        self._connecting: asyncio.Task | None = None
        # Bytes moving in the kernel (splice.py): a SpliceTunnel here, a SpliceRelay in http.py.
        self._splice = None
        # Tunnel bytes still to copy through Python before splicing takes over: setting a
        # splice up only pays back after about SPLICE_THRESHOLD bytes (bench/splice.py).
        self._copy_left = SPLICE_THRESHOLD

    # -- life cycle ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = transport.get_extra_info("peername") or ("", 0)
        listener = self.listener
        stats = listener.service.stats
        stats.conns += 1
        stats.total_conns += 1
        listener.connections.add(self)
        if stats.conns > listener.service.settings.maxclients:
            self.refuse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.listener.connections.discard(self)
        self.listener.service.stats.conns -= 1
        if self._connecting is not None:
            self._connecting.cancel()
        self.drop_backend()

    def refuse(self) -> None:
        """Over maxclients: close at once (HTTP answers 503 first)."""
        self.listener.service.stats.errors += 1
        self.transport.close()  # type: ignore[union-attr]

    def expire(self) -> None:
        """The current deadline passed (idle or timed-out): cut the connection."""
        self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.drop_backend()

    def shutdown(self) -> None:
        """The service stops. A raw relay has no clean point to stop at: it may finish
        within the drain time, after which the listener cuts it."""

    def drop_backend(self) -> None:
        splice, self._splice = self._splice, None
        if splice is not None:
            splice.cancel()
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.close()

    # -- flow control: the other side's write buffer drives this side's reading ---------------
    # A splice owns the reading of the sockets it reads (the server's; the client's too in a
    # tunnel): resuming a transport's reading then would pull the bytes being spliced into
    # Python. The client of a spliced response is still paused when it sends too much ahead.

    def pause_client_reading(self) -> None:
        if self.transport is not None and not self._reading_paused:
            if self._splice is None or not self.tunnel:
                self._reading_paused = True
                self.transport.pause_reading()

    def resume_client_reading(self) -> None:
        if self.transport is not None and self._reading_paused:
            if self._splice is None or not self.tunnel:
                self._reading_paused = False
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        backend = self.backend
        if backend is not None and backend.transport is not None and self._splice is None:
            backend.transport.pause_reading()

    def resume_writing(self) -> None:
        backend = self.backend
        if backend is not None and backend.transport is not None and self._splice is None:
            backend.transport.resume_reading()

    # -- choosing and reaching a server ----------------------------------------------------------

    def choose(
        self, service: Service, candidates: Sequence[RealServer], ctx: ScheduleContext, tried: list
    ) -> RealServer | None:
        return service.scheduler.select(eligible(candidates, tried, self.listener.now), ctx)

    def connect(self, server: RealServer) -> None:
        """Open a connection to `server` in the background; then connected() or connect_failed()."""
        self._connecting = asyncio.get_running_loop().create_task(self._connect(server))

    async def _connect(self, server: RealServer) -> None:
        settings = self.listener.service.settings
        try:
            conn = await self.listener.pool.connect(server, settings.connect_timeout)
        except (OSError, TimeoutError):
            self._connecting = None
            server.failures += 1
            server.down_until = self.listener.now + settings.fail_timeout
            if self.transport is not None:
                self.connect_failed(server)
            return
        self._connecting = None
        if self.transport is None:  # the client left meanwhile
            conn.close()
            return
        if conn.transport is None:  # accepted, then closed before we could use it
            self.connect_failed(server)
            return
        self.connected(conn)

    def connected(self, conn: BackendConnection) -> None:
        raise NotImplementedError

    def connect_failed(self, server: RealServer) -> None:
        raise NotImplementedError

    # -- events from the backend connection --------------------------------------------------------

    def backend_data(self, data: bytes) -> None:
        self.tunnel_to_client(data)

    def backend_eof(self) -> bool:
        """The server half-closed: pass it on, keep the other direction open."""
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        if self._client_eof:
            self.transport.close()  # type: ignore[union-attr]
            return False
        return True

    def backend_lost(self, conn: BackendConnection) -> None:
        if conn is self.backend:
            self.backend = None
            if self.transport is not None:
                self.transport.close()

    # -- the byte tunnel (raw TCP services, and HTTP after 101) -------------------------------

    def start_tunnel(self, conn: BackendConnection, pending: bytes) -> None:
        self.tunnel = True
        self.backend = conn
        self.deadline = self.listener.now + self.listener.service.settings.read_timeout
        if pending:
            self.listener.service.stats.bytes_in += len(pending)
            conn.write(pending)
        if self._client_eof and conn.transport is not None and conn.transport.can_write_eof():
            conn.transport.write_eof()
        conn.attach(self)
        self.follow_server_writing(conn)

    def follow_server_writing(self, conn: BackendConnection) -> None:
        """Just after the first write to a server: read the client again unless that write
        filled the server's buffer (its pause_writing came while no peer was attached)."""
        if conn.paused:
            self.pause_client_reading()
        else:
            self.resume_client_reading()

    def tunnel_to_client(self, data: bytes) -> None:
        self.deadline = self.listener.now + self.listener.service.settings.read_timeout
        self.listener.service.stats.bytes_out += len(data)
        self.transport.write(data)  # type: ignore[union-attr]
        self._copied(len(data))

    def tunnel_to_server(self, data: bytes) -> None:
        self.deadline = self.listener.now + self.listener.service.settings.read_timeout
        self.listener.service.stats.bytes_in += len(data)
        self.backend.write(data)  # type: ignore[union-attr]
        self._copied(len(data))

    def _copied(self, n: int) -> None:
        self._copy_left -= n
        if self._copy_left <= 0 and self._splice is None:
            self._splice_tunnel()

    def _splice_tunnel(self) -> None:
        """Go on relaying both ways by splice(2); bytes already written go out first."""
        backend = self.backend
        tunnel = SpliceTunnel(
            asyncio.get_running_loop(),
            self.transport,  # type: ignore[arg-type]
            backend.transport,  # type: ignore[union-attr]
            self._tunnel_spliced,
            to_b=self._spliced_in,
            to_a=self._spliced_out,
        )
        try:
            tunnel.start()
        except OSError:  # no fd or pipe to spare now: copy, and try again later
            self._copy_left = SPLICE_THRESHOLD
            return
        self._splice = tunnel

    def _spliced_in(self, n: int) -> None:
        self.deadline = self.listener.now + self.listener.service.settings.read_timeout
        self.listener.service.stats.bytes_in += n
        self.backend.server.bytes_in += n  # type: ignore[union-attr]

    def _spliced_out(self, n: int) -> None:
        self.deadline = self.listener.now + self.listener.service.settings.read_timeout
        self.listener.service.stats.bytes_out += n
        self.backend.server.bytes_out += n  # type: ignore[union-attr]

    def _tunnel_spliced(self, exc: BaseException | None) -> None:
        """Both directions ended (each EOF passed on), or one failed: the tunnel is over."""
        self._splice = None
        if exc is not None:
            self.abort()
        else:
            self.drop_backend()
            if self.transport is not None:
                self.transport.close()

    def tunnel_client_eof(self) -> bool:
        self._client_eof = True
        backend = self.backend
        if backend is None or backend.transport is None:
            return True  # still connecting: the EOF is passed on in start_tunnel
        if backend.transport.can_write_eof():
            backend.transport.write_eof()
        return True


class RawFrontend(Frontend):
    """Raw TCP relay: one server chosen per connection, bytes both ways, half-close aware."""

    def __init__(self, listener: ServiceListener) -> None:
        super().__init__(listener)
        self._pending = bytearray()
        self._tried: list[RealServer] = []
        self._ctx: ScheduleContext | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.transport is None or self.transport.is_closing():
            return
        self._ctx = ScheduleContext(client=self.client)
        self._dispatch()

    def _dispatch(self) -> None:
        service = self.listener.service
        server = self.choose(service, service.servers, self._ctx, self._tried)
        if server is None:
            service.stats.errors += 1
            self.transport.close()  # type: ignore[union-attr]
            return
        self.deadline = self.listener.now + service.settings.connect_timeout + 1
        self.connect(server)

    def connect_failed(self, server: RealServer) -> None:
        self._tried.append(server)
        self._dispatch()

    def connected(self, conn: BackendConnection) -> None:
        conn.server.conns += 1
        pending, self._pending = bytes(self._pending), bytearray()
        self.start_tunnel(conn, pending)

    def drop_backend(self) -> None:
        if self.backend is not None:
            self.backend.server.conns -= 1
        super().drop_backend()

    def backend_lost(self, conn: BackendConnection) -> None:
        if conn is self.backend:
            conn.server.conns -= 1
        super().backend_lost(conn)

    def data_received(self, data: bytes) -> None:
        if self.backend is not None:
            self.tunnel_to_server(data)
            return
        self._pending += data
        if len(self._pending) > MAX_PENDING:
            self.pause_client_reading()

    def eof_received(self) -> bool:
        return self.tunnel_client_eof()
