"""HttpFrontend: the client side of an HTTP service.

Every request on a keep-alive connection is routed by its own URI (rules, then the scheduler),
sent over a pooled keep-alive connection to the chosen real server, and its response relayed
verbatim. One request is in flight per client connection, so pipelined requests are answered
in order. Framing comes from tcpvs.http; anything ambiguous is answered with a 4xx before a
byte of it reaches a server.
"""

from __future__ import annotations

import asyncio

from tcpvs.engine.frontend import MAX_PENDING, Frontend
from tcpvs.engine.pool import BackendConnection
from tcpvs.engine.splice import SPLICE_THRESHOLD, SpliceRelay
from tcpvs.http import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    BODY_UNTIL_CLOSE,
    ChunkedScanner,
    HttpError,
    error_response,
    parse_request_head,
    parse_response_head,
)
from tcpvs.sched.base import ScheduleContext
from tcpvs.table.model import RealServer

# A chunked request body is buffered up to this size before a server is chosen, so that bad
# chunk framing is refused before anything is sent; larger bodies stream (still validated).
CHUNKED_BUFFER = 64 * 1024
# RFC 9110 9.2.2: requests that may be repeated with the same effect as once.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


class HttpFrontend(Frontend):
    def __init__(self, listener) -> None:
        super().__init__(listener)
        self._buf = bytearray()  # client bytes not forwarded yet: head, body, pipelined requests
        self._req = None  # RequestHead of the request in flight
        self._ctx = ScheduleContext()  # one per connection, reset for each request
        self._candidates: list[RealServer] | tuple = ()
        self._tried: list[RealServer] = []
        self._server: RealServer | None = None  # server whose `conns` counts this request
        self._previous: RealServer | None = None  # server of the previous request (phttp)
        # request body: validated bytes at the front of _buf, and whether the end was seen
        self._body_left = 0
        self._body_scanner: ChunkedScanner | None = None
        self._body_avail = 0
        self._body_complete = True
        # response
        self._resp = None
        self._resp_buf = bytearray()
        self._resp_left = 0
        self._resp_scanner: ChunkedScanner | None = None
        self._resp_started = False  # bytes of the final response went to the client
        self._resp_clean = True  # the server sent nothing after the response
        self._stopping = False
        self._xff = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._ctx.client = self.client
        self._xff = b"X-Forwarded-For: %s\r\n\r\n" % str(self.client[0]).encode()
        self.deadline = self.listener.now + self.listener.service.settings.client_timeout

    def refuse(self) -> None:
        self.transport.write(error_response(503))  # type: ignore[union-attr]
        super().refuse()

    # -- client bytes -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            self.tunnel_to_server(data)
            return
        self.listener.service.stats.bytes_in += len(data)
        if self._req is None:
            if not self._buf:
                self._read_head(data)
            else:
                self._buf += data
                self._read_head(self._buf)
            return
        self._buf += data
        if self._body_complete:  # pipelined bytes of the next request: wait, bounded
            if len(self._buf) > MAX_PENDING:
                self.pause_client_reading()
            return
        try:
            self._scan_body()
        except HttpError as exc:
            self._fail(exc.status)
            return
        self.deadline = self.listener.now + self.listener.service.settings.server_timeout
        if self.backend is not None:
            piece = self._take_body()
            if piece:
                self.backend.write(piece)
        elif self._connecting is None and self._body_ready_to_dispatch():
            self._dispatch()
        elif len(self._buf) > MAX_PENDING:
            self.pause_client_reading()

    def eof_received(self) -> bool:
        if self.tunnel:
            return self.tunnel_client_eof()
        self._client_eof = True
        if self._req is None:
            return False  # idle or a partial head: nothing more will come, close
        if not self._body_complete and not self._resp_started:
            self._fail(400)  # the body can never be completed: end it now, not at a timeout
            return True
        return True  # let the response in flight finish; closed after it

    def _read_head(self, buf: bytes | bytearray) -> None:
        service = self.listener.service
        try:
            head = parse_request_head(buf, service.settings.max_head_size)
        except HttpError as exc:
            self._fail(exc.status)
            return
        if head is None:
            if buf is not self._buf:
                self._buf += buf
                self.deadline = self.listener.now + service.settings.client_timeout
            return
        if buf is self._buf:
            del self._buf[: head.head_len]
        elif head.head_len < len(buf):
            self._buf += memoryview(buf)[head.head_len :]
        self._begin(head)

    # -- one request --------------------------------------------------------------------------

    def _begin(self, head) -> None:
        service = self.listener.service
        service.stats.requests += 1
        self._req = head
        self._body_avail = 0
        if head.body == BODY_LENGTH:
            self._body_left, self._body_scanner = head.content_length, None
            self._body_complete = head.content_length == 0
        elif head.body == BODY_CHUNKED:
            self._body_scanner, self._body_complete = ChunkedScanner(), False
        else:
            self._body_complete = True
        try:
            self._scan_body()
        except HttpError as exc:
            self._fail(exc.status)
            return
        self.deadline = self.listener.now + service.settings.server_timeout
        if self._tried:
            self._tried = []
        rule = None
        if service.rules:
            rule = service.route(head.target)
            self._candidates = () if rule is None else rule.servers
        else:
            self._candidates = service.servers
        self._ctx.next_request(head, rule, self._previous)
        if service.rules and rule is None:
            self._no_server()
            return
        if self._body_ready_to_dispatch():
            self._dispatch()

    def _body_ready_to_dispatch(self) -> bool:
        return (
            self._body_scanner is None
            or self._body_complete
            or self._req.expect_continue  # the client waits for 100 before sending the body
            or self._body_avail >= CHUNKED_BUFFER
        )

    def _scan_body(self) -> None:
        """Extend the validated body prefix of _buf (raises HttpError on bad chunk framing)."""
        start = self._body_avail
        if self._body_complete or start >= len(self._buf):
            return
        if self._body_scanner is None:
            n = min(self._body_left, len(self._buf) - start)
            self._body_left -= n
            self._body_avail += n
            self._body_complete = self._body_left == 0
        else:
            self._body_avail += self._body_scanner.feed(self._buf, start)
            self._body_complete = self._body_scanner.done

    def _take_body(self) -> bytes:
        n = self._body_avail
        if not n:
            return b""
        piece = bytes(self._buf[:n])
        del self._buf[:n]
        self._body_avail = 0
        return piece

    def _dispatch(self) -> None:
        service = self.listener.service
        server = self.choose(service, self._candidates, self._ctx, self._tried)
        if server is None:
            if self._tried:
                self._fail(502)
            else:
                self._no_server()
            return
        self._send_to(server)

    def _no_server(self) -> None:
        """No rule matched or no server may take it: the `redirect` server, else 503."""
        redirect = self.listener.redirect_server()
        if redirect is None or redirect in self._tried:
            self._fail(503)
        else:
            self._send_to(redirect)

    def _send_to(self, server: RealServer) -> None:
        conn = self.listener.pool.acquire(server)
        if conn is None:
            self.connect(server)
        else:
            self.connected(conn)

    def connect_failed(self, server: RealServer) -> None:
        self._tried.append(server)
        if server is self.listener.redirect_server():
            self._fail(502)
        else:
            self._dispatch()

    def connected(self, conn: BackendConnection) -> None:
        server = conn.server
        self.backend = conn
        self._server = server
        server.conns += 1
        server.requests += 1
        self._resp = None
        self._resp_started = False
        self._resp_clean = True
        raw = self._req.raw
        out = raw[:-2] + self._xff if self.listener.service.settings.forwardfor else raw
        conn.write(out + self._take_body() if self._body_avail else out)
        conn.attach(self)
        if self.backend is conn:  # (attaching replays what the server sent early)
            self.follow_server_writing(conn)

    # -- server bytes -------------------------------------------------------------------------

    def backend_data(self, data: bytes) -> None:
        if self.tunnel:
            self.tunnel_to_client(data)
            return
        self.deadline = self.listener.now + self.listener.service.settings.server_timeout
        if self._resp is None:
            self._read_response_head(data)
        else:
            self._relay_body(data)

    def _read_response_head(self, data: bytes) -> None:
        if self._resp_buf:
            self._resp_buf += data
            buf: bytes = bytes(self._resp_buf)
            self._resp_buf.clear()
        else:
            buf = data
        settings = self.listener.service.settings
        while True:
            try:
                resp = parse_response_head(buf, settings.max_head_size, self._req.method)
            except HttpError as exc:
                self._fail(exc.status)
                return
            if resp is None:
                self._resp_buf += buf
                return
            if resp.status >= 200 or resp.status == 101:
                break
            self._to_client(resp.raw)  # interim (100 Continue, 103 Early Hints): pass on
            buf = buf[resp.head_len :]
            if not buf:
                return
        self._resp = resp
        self._resp_started = True
        rest_len = len(buf) - resp.head_len  # body bytes that came with the head
        if resp.status == 101:
            self._to_client(buf)
            pending, self._buf = bytes(self._buf), bytearray()
            self.start_tunnel(self.backend, pending)  # type: ignore[arg-type]
            return
        scheduler = self.listener.service.scheduler
        extra = (
            scheduler.response_headers(self._ctx, self._server) if scheduler.adds_headers else b""
        )
        if extra:
            buf = resp.raw[:-2] + extra + b"\r\n" + buf[resp.head_len :]
        if resp.body == BODY_LENGTH:
            self._resp_left = resp.content_length
        elif resp.body == BODY_CHUNKED:
            self._resp_scanner = ChunkedScanner()
        elif resp.body == BODY_NONE:
            self._resp_left = 0
        if not rest_len:
            self._to_client(buf)
            if resp.body == BODY_NONE or (resp.body == BODY_LENGTH and not self._resp_left):
                self._end_response()
                return
        else:
            self._relay_body(buf, len(buf) - rest_len)  # the head and what came with it: copied
        if (
            self._resp is resp
            and resp.body == BODY_LENGTH
            and self._resp_left >= SPLICE_THRESHOLD
            and self.backend is not None
            and self.transport is not None
        ):
            self._splice_rest()

    def _splice_rest(self) -> None:
        """The rest of a large Content-Length body moves by splice(2), not through Python
        (bench/splice.py: it pays above SPLICE_THRESHOLD on loopback)."""
        relay = SpliceRelay(
            asyncio.get_running_loop(),
            self.backend.transport,  # type: ignore[union-attr]
            self.transport,  # type: ignore[arg-type]
            self._resp_left,
            self._spliced,
            progress=self._spliced_bytes,
        )
        try:
            relay.start()
        except OSError:
            return  # no fd or pipe to spare: keep copying
        self._splice = relay

    def _spliced_bytes(self, n: int) -> None:
        self.listener.service.stats.bytes_out += n  # what _to_client would count
        self.backend.server.bytes_out += n  # type: ignore[union-attr]
        self._resp_left -= n
        self.deadline = self.listener.now + self.listener.service.settings.server_timeout

    def _spliced(self, exc: BaseException | None) -> None:
        self._splice = None
        if exc is not None:
            self.abort()  # truncated response, or a side gone: cut, as backend_lost does
        else:
            self._end_response()

    def _relay_body(self, data: bytes, start: int = 0) -> None:
        """Send `data` (response head bytes up to `start`, body bytes after) in one write, without
        slicing it apart; end the response when complete."""
        resp = self._resp
        body = resp.body
        complete = False
        if body == BODY_LENGTH or body == BODY_NONE:
            n = len(data) - start
            if n >= self._resp_left:
                if n > self._resp_left:
                    self._resp_clean = False
                    data = data[: start + self._resp_left]
                self._resp_left = 0
                complete = True
            else:
                self._resp_left -= n
        elif body == BODY_CHUNKED:
            try:
                n = start + self._resp_scanner.feed(data, start)  # type: ignore[union-attr]
            except HttpError:
                self.abort()  # a corrupt response after its head went out: cut
                return
            if n < len(data):
                self._resp_clean = False
                data = data[:n]
            complete = self._resp_scanner.done  # type: ignore[union-attr]
        self._to_client(data)
        if complete:
            self._end_response()

    def _to_client(self, data: bytes) -> None:
        self.listener.service.stats.bytes_out += len(data)
        self.transport.write(data)  # type: ignore[union-attr]

    def _end_response(self) -> None:
        listener = self.listener
        keepalive_deadline = listener.now + listener.service.settings.keepalive_timeout
        resp, req, conn = self._resp, self._req, self.backend
        server = self._server
        if server is not None:
            server.conns -= 1
            self._server = None
            self._previous = server
        body_sent = self._body_complete and not self._body_avail
        if (
            conn is not None
            and resp.keep_alive
            and resp.body != BODY_UNTIL_CLOSE
            and self._resp_clean
            and body_sent
        ):
            self.backend = None
            listener.pool.release(conn, keepalive_deadline)
        else:
            self.drop_backend()
        self._req = self._resp = None
        self._resp_scanner = None
        if (
            not req.keep_alive
            or resp.body == BODY_UNTIL_CLOSE
            or not body_sent
            or self._stopping
            or self._client_eof
            and not self._buf
        ):
            self.transport.close()  # type: ignore[union-attr]
            return
        self.deadline = keepalive_deadline
        self.resume_client_reading()
        if self._buf:
            self._read_head(self._buf)

    def backend_eof(self) -> bool:
        if self.tunnel:
            return super().backend_eof()
        return False  # the transport closes; backend_lost decides

    def backend_lost(self, conn: BackendConnection) -> None:
        if conn is not self.backend:
            return
        if self.tunnel:
            super().backend_lost(conn)
            return
        self.backend = None
        if self._req is None or self.transport is None:
            return
        resp = self._resp
        if resp is not None and resp.body == BODY_UNTIL_CLOSE:
            self._end_response()
        elif resp is None:
            # A pooled connection found closed may just have gone stale, or the server may
            # have started on the request and died: only a request that is safe to repeat
            # (RFC 9110 9.2.2: idempotent, nothing to resend but its head) is sent again.
            if (
                conn.reused
                and not self._resp_buf
                and self._req.body == BODY_NONE
                and self._req.method in IDEMPOTENT
            ):
                server = self._server
                if server is not None:
                    server.conns -= 1
                    self._server = None
                self.connect(conn.server)  # a stale pooled connection: replay once, fresh
            else:
                self._fail(502)
        else:
            self.abort()  # truncated response

    # -- endings --------------------------------------------------------------------------

    def _fail(self, status: int) -> None:
        """Answer `status` (unless a response already started) and close the connection."""
        self.listener.service.stats.errors += 1
        server = self._server
        if server is not None:
            server.conns -= 1
            self._server = None
        self.drop_backend()
        if self.transport is None:
            return
        if not self._resp_started:
            self._to_client(error_response(status))
        self.transport.close()

    def expire(self) -> None:
        if self.tunnel or self._resp_started:
            self.abort()
        elif self._req is not None:
            self._fail(504)
        elif self._buf:
            self._fail(408)
        else:
            self.transport.close()  # type: ignore[union-attr]

    def shutdown(self) -> None:
        if self._req is None and not self._buf and not self.tunnel:
            self.transport.close()  # type: ignore[union-attr]
        else:
            self._stopping = True

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        if server is not None:
            server.conns -= 1
            self._server = None
        super().connection_lost(exc)
