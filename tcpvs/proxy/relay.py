"""Relays: one direction of one proxied connection each, client to server or server to client.

A relay owns everything about its direction's bytes: reading its source (paused while the
exchange holds it, while the destination's write buffer is full, or while a splice reads it
in the kernel), counting every byte where it crosses a socket (the only place bytes are
counted), handing bytes to the exchange or passing them along as they are, and switching
from copying to splice(2) when that pays. No other code asks whether a direction is spliced.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tcpvs.proxy.splice import SPLICE_THRESHOLD, SpliceFlow

if TYPE_CHECKING:
    from tcpvs.exchange.base import Exchange, Site
    from tcpvs.proxy.client import ClientConnection
    from tcpvs.table.model import RealServer


class Relay:
    """One direction: bytes read from `src`, given to the exchange or passed to `dst`.

    Passing (`pass_through(n)`): the next n bytes (-1: all until the source ends, the end then
    passed on as a half-close) go to `dst` unseen by the exchange, copied, or spliced when
    there are at least SPLICE_THRESHOLD of them (known length) or once SPLICE_THRESHOLD have
    been copied (unknown length: setting a splice up only pays back on long transfers,
    bench/splice.py). The owner hears `relay_passed` at the end, `relay_failed` on a failure.
    """

    def __init__(self, owner: ClientConnection, site: Site, exchange: Exchange) -> None:
        self.owner = owner
        self.site = site
        self.exchange = exchange
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.server: RealServer | None = None  # the server at the other end, for its counters
        self.held = False  # the exchange asked not to read the source
        self.blocked = False  # the destination's write buffer is over its high-water mark
        self.paused = False  # the source transport's reading is paused (by this relay)
        self.ended = False  # the source sent its end (EOF)
        self.pass_left = 0  # bytes to pass along unseen; -1: until the end; 0: not passing
        self.copied = 0  # bytes copied while passing with no length (the splice trigger)
        self.splice: SpliceFlow | None = None
        self.client_bytes = 0  # bytes of this direction that crossed the client's socket

    # -- counting: where bytes cross a socket (see the subclasses) ----------------------------

    def count_read(self, n: int) -> None:
        raise NotImplementedError

    def count_written(self, n: int) -> None:
        raise NotImplementedError

    def deliver(self, data: bytes) -> None:
        """Bytes the exchange must see."""
        raise NotImplementedError

    def deliver_end(self) -> None:
        raise NotImplementedError

    # -- the source ---------------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        self.count_read(len(data))
        if self.pass_left:
            self._pass(data)
        else:
            self.deliver(data)

    def source_ended(self) -> None:
        self.ended = True
        left = self.pass_left
        if left < 0:
            self._pass_end()
        elif left > 0:
            self.pass_left = 0
            self.owner.relay_failed(self)  # the source ended short of what it announced
        else:
            self.deliver_end()

    def set_source(self, transport: asyncio.Transport | None, server: RealServer | None) -> None:
        """Read another transport (a server connection taken or given back)."""
        if self.splice is not None:
            self._stop_splice()
        if self.paused and self.src is not None and not self.src.is_closing():
            self.src.resume_reading()  # given back to the pool: it must see the server close
        self.src, self.paused, self.ended = transport, False, False
        if server is not None:
            self.server = server
        if self.held or self.blocked:  # (a new source is being read: the common case)
            self._update()

    def set_destination(
        self, transport: asyncio.Transport | None, server: RealServer | None, blocked: bool
    ) -> None:
        """Write to another transport; `blocked`: its write buffer is full already."""
        if self.splice is not None:
            self._stop_splice()
        self.dst = transport
        if server is not None:
            self.server = server
        if blocked != self.blocked:
            self.blocked = blocked
            self._update()

    # -- flow control -------------------------------------------------------------------------

    def hold(self, held: bool) -> None:
        self.held = held
        self._update()

    def set_blocked(self, blocked: bool) -> None:
        self.blocked = blocked
        self._update()

    def _update(self) -> None:
        """Read the source exactly when nobody has a reason to stop it (after its end, there is
        nothing left to read)."""
        src = self.src
        if src is None:
            return
        stop = self.held or self.blocked or self.ended or self.splice is not None
        if stop != self.paused and not src.is_closing():
            self.paused = stop
            if stop:
                src.pause_reading()
            else:
                src.resume_reading()

    # -- the destination ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.count_written(len(data))
        dst = self.dst
        assert dst is not None, "a relay writes only with a destination"
        dst.write(data)

    # -- passing bytes along unseen -----------------------------------------------------------

    def pass_through(self, nbytes: int) -> None:
        """Pass the next `nbytes` (-1: all until the end) to the destination as they are."""
        self.pass_left, self.copied = nbytes, 0
        if nbytes < 0 and self.ended:
            self._pass_end()
        elif nbytes >= SPLICE_THRESHOLD:
            self._splice(nbytes)

    def _pass(self, data: bytes) -> None:
        self.exchange.active()
        left = self.pass_left
        n = len(data)
        if left < 0:
            self.write(data)
            self.copied += n
            if self.copied >= SPLICE_THRESHOLD and self.splice is None:
                self._splice(-1)
        elif n < left:
            self.write(data)
            self.pass_left = left - n
        else:
            self.write(data[:left] if n > left else data)
            self.pass_left = 0
            self.owner.relay_passed(self, data[left:] if n > left else b"")

    def _pass_end(self) -> None:
        """The source ended while passing with no length: pass the end on, and say so."""
        self.pass_left = 0
        dst = self.dst
        if dst is not None and not dst.is_closing() and dst.can_write_eof():
            dst.write_eof()
        self.owner.relay_passed(self, b"")

    def _splice(self, nbytes: int) -> None:
        server = self.server
        if self.site.tls or (server is not None and server.tls):
            return  # TLS records on one side: only the loop's SSL layer may read them
        src, dst = self.src, self.dst
        assert src is not None and dst is not None, "a relay passes only between two ends"
        flow = SpliceFlow(
            asyncio.get_running_loop(),
            src,
            dst,
            nbytes,
            self._spliced,
            self._splice_done,
        )
        try:
            flow.start()
        except OSError:  # no fd or pipe to spare now: go on copying, try again later
            self.copied = 0
            return
        self.splice = flow
        self._update()

    def _spliced(self, n: int) -> None:
        self.count_read(n)
        self.count_written(n)
        if self.pass_left > 0:
            self.pass_left -= n
        self.exchange.active()

    def _splice_done(self, exc: BaseException | None) -> None:
        self.splice = None
        if exc is not None:
            self.pass_left = 0
            self.owner.relay_failed(self)
            return
        if self.pass_left < 0:
            self.ended = True  # the flow passed the end on already
        self.pass_left = 0
        self._update()
        self.owner.relay_passed(self, b"")

    def _stop_splice(self) -> None:
        splice, self.splice = self.splice, None
        if splice is not None:
            splice.cancel()
            self.pass_left = 0

    def close(self) -> None:
        """The connection is being torn down: stop any splice, call nothing back."""
        self._stop_splice()


class ClientToServer(Relay):
    """Client bytes: read from the client (the service's bytes in), written to the server in
    use (that server's bytes in)."""

    def count_read(self, n: int) -> None:
        self.site.service.stats.bytes_in += n
        self.client_bytes += n

    def count_written(self, n: int) -> None:
        server = self.server
        assert server is not None, "written only to a server in use"
        server.bytes_in += n

    def deliver(self, data: bytes) -> None:
        self.exchange.client_data(data)

    def deliver_end(self) -> None:
        self.exchange.client_ended()


class ServerToClient(Relay):
    """Server bytes: read from the server in use (its bytes out), written to the client (the
    service's bytes out). The switch's own answers go out here too."""

    def count_read(self, n: int) -> None:
        server = self.server
        assert server is not None, "read only from a server in use"
        server.bytes_out += n

    def count_written(self, n: int) -> None:
        self.site.service.stats.bytes_out += n
        self.client_bytes += n

    def deliver(self, data: bytes) -> None:
        self.exchange.server_data(data)

    def deliver_end(self) -> None:
        self.exchange.server_ended()
