"""HttpExchange: one client connection of an HTTP service, as a sans-IO state machine.

Every request on a keep-alive connection is routed by its own URI (rules, then the
scheduler), sent to a real server over a pooled keep-alive connection, and its response
relayed verbatim; one request is in flight at a time, so pipelined requests are answered in
order. Framing comes from tcpvs.http; anything ambiguous is answered with a 4xx before a byte
of it reaches a server. Which requests are sent again after a failure: docs/failures.md.

States, and how long each may last (patience(); from SENDING on, activity starts it again)

  HEAD        reading a request head              client_timeout from its first byte
  IDLE        keep-alive, between requests        keepalive_timeout
  BUFFERING   a chunked body validated before     client_timeout
              a server is chosen (up to 64 KiB)
  CONNECTING  a server chosen, being reached      server_timeout
  SENDING     request going out, body unfinished server_timeout, activity starts it again
  WAITING     request sent whole, no answer yet   server_timeout, activity starts it again
  RESPONDING  the answer going to the client      server_timeout, activity starts it again
  TUNNEL      after 101: bytes both ways          read_timeout, activity starts it again
  CLOSED

Transitions (TRANSITIONS below; the unit tests check every one they see is listed)

  HEAD        -> BUFFERING | CONNECTING           a head read (503/redirect: CONNECTING)
  IDLE        -> HEAD                             the next request's first byte
  BUFFERING   -> CONNECTING                       body complete or 64 KiB validated
  CONNECTING  -> CONNECTING                       refused: the next server
              -> SENDING | WAITING                connected, head (and body so far) sent
  SENDING     -> WAITING                          body complete
  SENDING, WAITING -> RESPONDING | TUNNEL         a final response head (101: TUNNEL)
              -> CONNECTING                       stale pooled connection: sent again, if safe
  RESPONDING  -> IDLE | HEAD                      answer complete (HEAD: pipelined bytes)
  any         -> CLOSED                           error answer, timeout, close, client gone

On a deadline: HEAD with bytes, or BUFFERING -> 408; HEAD without bytes, IDLE -> close;
CONNECTING, SENDING, WAITING -> 504; RESPONDING, TUNNEL -> cut (the answer had started).
"""

from __future__ import annotations

from collections.abc import Callable

from tcpvs.exchange.base import CLOSED, MAX_PENDING, Exchange, Port, Site, observe

# (from the modules themselves: tcpvs.http's package may still be loading this build)
from tcpvs.http.chunked import ChunkedScanner
from tcpvs.http.common import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, HttpError
from tcpvs.http.heads import (
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
)
from tcpvs.http.responses import error_response, https_location, redirect_response
from tcpvs.table.counters import (
    BAD_REQUEST,
    BAD_RESPONSE,
    CLIENT_GONE,
    CLIENT_TIMEOUT,
    NO_SERVER,
    OK,
    REFUSED,
    SERVER_CLOSED,
    SERVER_TIMEOUT,
    TUNNEL_TIMEOUT,
)
from tcpvs.table.model import RealServer

HEAD, IDLE, BUFFERING, CONNECTING, SENDING, WAITING, RESPONDING, TUNNEL = range(8)
NAMES = {
    HEAD: "HEAD",
    IDLE: "IDLE",
    BUFFERING: "BUFFERING",
    CONNECTING: "CONNECTING",
    SENDING: "SENDING",
    WAITING: "WAITING",
    RESPONDING: "RESPONDING",
    TUNNEL: "TUNNEL",
    CLOSED: "CLOSED",
}
TRANSITIONS = {
    HEAD: {BUFFERING, CONNECTING, CLOSED},
    IDLE: {HEAD, CLOSED},
    BUFFERING: {CONNECTING, CLOSED},
    CONNECTING: {CONNECTING, SENDING, WAITING, CLOSED},
    SENDING: {WAITING, RESPONDING, TUNNEL, CONNECTING, CLOSED},
    WAITING: {RESPONDING, TUNNEL, CONNECTING, CLOSED},
    RESPONDING: {IDLE, HEAD, CLOSED},
    TUNNEL: {CLOSED},
    CLOSED: {CLOSED},
}
# Called with (state, next state) on every transition when set (see trace()).
_tracer: Callable[[int, int], None] | None = None


def trace(tracer: Callable[[int, int], None] | None) -> None:
    """Call `tracer(state, next_state)` on every transition of every HttpExchange (None: stop);
    the unit tests check each one against TRANSITIONS."""
    global _tracer
    _tracer = tracer


# A chunked request body is buffered up to this size before a server is chosen, so that bad
# chunk framing is refused before anything is sent; larger bodies stream (still validated).
CHUNKED_BUFFER = 64 * 1024
# RFC 9110 9.2.2: requests that may be repeated with the same effect as once.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"})


class HttpExchange(Exchange):
    """HTTP/1.x on one client connection (see the module docstring for its states)."""

    def __init__(self, site: Site, port: Port, client: tuple) -> None:
        super().__init__(site, port)
        self.ctx.client = client
        # what `forwardfor` adds to each request head (with the blank line that ends it)
        proto = b"X-Forwarded-Proto: https\r\n" if site.tls else b""
        self.xff = b"X-Forwarded-For: %s\r\n%s\r\n" % (str(client[0]).encode(), proto)
        self.buf = bytearray()  # client bytes not forwarded yet: head, body, pipelined requests
        self.holding = False  # the client is held: buf is over MAX_PENDING
        self.client_done = False  # the client sent its end
        self.stopping = False  # the service stops: close after the answer in flight
        # the request in flight
        self.req: RequestHead | None = None
        self.candidates: list[RealServer] | tuple = ()
        self.previous: RealServer | None = None  # server of the previous request (phttp)
        self.reused = False  # the server connection in use served a request before
        self.body_left = 0  # Content-Length body bytes not received yet
        self.body_scanner: ChunkedScanner | None = None
        self.body_avail = 0  # validated body bytes at the front of buf, not sent yet
        self.body_complete = True  # every byte of the request body was received
        # its response
        self.resp: ResponseHead | None = None  # once the final one came
        self.resp_buf = bytearray()  # a response head still incomplete
        self.resp_left = 0  # Content-Length body bytes the client has not been sent yet
        self.resp_scanner: ChunkedScanner | None = None
        self.resp_started = False  # bytes of the final response went to the client
        self.resp_clean = True  # the server sent nothing after the response

    def _enter(self, state: int) -> None:
        """Change state: its time starts now (activity starts it again from SENDING on)."""
        if _tracer is not None:
            _tracer(self.state, state)
        self._go(state, SENDING <= state <= TUNNEL)

    def patience(self) -> float:
        """The timeout of the current state (the table in the module docstring)."""
        state = self.state
        settings = self.site.service.settings
        if state == HEAD or state == BUFFERING:
            return settings.client_timeout
        if state == IDLE:
            return settings.keepalive_timeout
        if state == TUNNEL:
            return settings.read_timeout
        return settings.server_timeout if state != CLOSED else 0.0

    def _hold(self, hold: bool) -> None:
        if hold != self.holding:
            self.holding = hold
            self.port.hold_client(hold)

    # -- events: the client -------------------------------------------------------------------

    def start(self) -> None:
        """The client connected: its first request head is awaited (the first state)."""
        self._go(HEAD, False)

    def _refusal(self) -> int:
        self.port.send_client(error_response(503))
        return 503

    def client_data(self, data: bytes) -> None:
        state = self.state
        if state == HEAD or state == IDLE:
            if state == IDLE:
                self._enter(HEAD)
            if self.t_begin == 0.0:
                self._open()
            if not self.buf:
                self._read_head(data)
            else:
                self.buf += data
                self._read_head(self.buf)
            return
        if state == CLOSED:
            return
        self.buf += data
        if self.body_complete:  # pipelined bytes of the next request: they wait, bounded
            if len(self.buf) > MAX_PENDING:
                self._hold(True)
            return
        try:
            self._scan_body()
        except HttpError as exc:
            self._fail(exc.status, BAD_REQUEST)
            return
        self.active()
        if state == SENDING or state == RESPONDING:  # (RESPONDING: the server answered early)
            piece = self._take_body()
            if piece:
                self.port.send_server(piece)
            if state == SENDING and self.body_complete:
                self._enter(WAITING)
        elif state == BUFFERING and self._ready_to_dispatch():
            self._dispatch()
        elif len(self.buf) > MAX_PENDING:
            self._hold(True)

    def client_ended(self) -> None:
        """The client sent its end (a half-close): it will send nothing more."""
        self.client_done = True
        state = self.state
        if state == HEAD or state == IDLE:
            self._record(0, CLIENT_GONE, None)  # (a partial head: there was one in hand)
            self._close()  # idle or a partial head: nothing more will come
        elif not self.body_complete and not self.resp_started:
            self._fail(400, CLIENT_GONE)  # the body can never be completed: end it now
        # else: the answer in flight finishes; the connection closes after it

    def _read_head(self, buf: bytes | bytearray) -> None:
        try:
            head = parse_request_head(buf, self.site.service.settings.max_head_size)
        except HttpError as exc:
            self._fail(exc.status, BAD_REQUEST)
            return
        if head is None:
            if buf is not self.buf:
                self.buf += buf
            return
        if buf is self.buf:
            del self.buf[: head.head_len]
        elif head.head_len < len(buf):
            self.buf += memoryview(buf)[head.head_len :]
        self._begin(head)

    # -- one request ----------------------------------------------------------------------------

    def _begin(self, head) -> None:
        service = self.site.service
        service.stats.requests += 1
        self.req = head
        self.t_ready = self.site.clock()
        self.req_bytes = head.head_len
        self.body_avail = 0
        if head.body == BODY_LENGTH:
            self.body_left, self.body_scanner = head.content_length, None
            self.body_complete = head.content_length == 0
        elif head.body == BODY_CHUNKED:
            self.body_scanner, self.body_complete = ChunkedScanner(), False
        else:
            self.body_complete = True
        try:
            self._scan_body()
        except HttpError as exc:
            self._fail(exc.status, BAD_REQUEST)
            return
        if service.redirect_https:
            self._to_https(head)
            return
        if self.tried:
            self.tried = []
        rule = None
        if service.rules:
            rule = service.route(head.target)
            self.candidates = () if rule is None else rule.servers
        else:
            self.candidates = service.servers
        self.ctx.next_request(head, rule, self.previous)
        if service.rules and rule is None:
            self._no_server()
        elif self._ready_to_dispatch():
            self._dispatch()
        else:
            self._enter(BUFFERING)

    def _to_https(self, head) -> None:
        """`redirect = https`: the same URL over https, 301 (308 for a method a 301 may turn
        into GET), and the connection closes: a body, if any, is not read."""
        location = https_location(head)
        if location is None:
            self._fail(400, BAD_REQUEST)
            return
        status = 301 if head.method == b"GET" or head.method == b"HEAD" else 308
        self.port.send_client(redirect_response(status, location))
        self._record(status, OK, None)
        self._close()

    def _ready_to_dispatch(self) -> bool:
        req = self.req
        assert req is not None, "a request is in flight"
        return (
            self.body_scanner is None
            or self.body_complete
            or req.expect_continue  # the client waits for 100 before sending the body
            or self.body_avail >= CHUNKED_BUFFER
        )

    def _scan_body(self) -> None:
        """Extend the validated body prefix of buf (raises HttpError on bad chunk framing)."""
        start = self.body_avail
        if self.body_complete or start >= len(self.buf):
            return
        if self.body_scanner is None:
            n = min(self.body_left, len(self.buf) - start)
            self.body_left -= n
            self.body_avail += n
            self.body_complete = self.body_left == 0
        else:
            self.body_avail += self.body_scanner.feed(self.buf, start)
            self.body_complete = self.body_scanner.done

    def _take_body(self) -> bytes:
        n = self.body_avail
        if not n:
            return b""
        piece = bytes(self.buf[:n])
        del self.buf[:n]
        self.body_avail = 0
        self.req_bytes += n
        return piece

    def _dispatch(self) -> None:
        server = self._choose(self.candidates)
        if server is None:
            self._no_server()
        else:
            self._reach(server, False)

    def _no_server(self) -> None:
        """No rule matched or no server may take it: the `redirect` server, else 503."""
        redirect = self.site.redirect_server()
        if redirect is None:
            self._fail(503, NO_SERVER)
        else:
            self._reach(redirect, False)

    def _reach(self, server: RealServer, fresh: bool) -> None:
        self.target = server
        self._enter(CONNECTING)
        if self.port.open_server(server, fresh):
            self.server_ready(True)

    # -- events: the server connection ----------------------------------------------------------

    def server_ready(self, reused: bool) -> None:
        """The connection to the server being reached is ready: send the request."""
        server = self.target
        assert server is not None, "ready only after a server was asked for"
        self._take(server)
        server.requests += 1
        self.t_connect = self.site.clock()
        self.reused = reused
        self.resp = None
        self.resp_started = False
        self.resp_clean = True
        req = self.req
        assert req is not None, "a request is in flight"
        raw = req.raw
        out = raw[:-2] + self.xff if self.site.service.settings.forwardfor else raw
        self.port.send_server(out + self._take_body() if self.body_avail else out)
        self._enter(WAITING if self.body_complete else SENDING)
        if self.holding and len(self.buf) <= MAX_PENDING:
            self._hold(False)

    def server_failed(self, server: RealServer) -> None:
        """The server refused the connection, or did not accept it in time."""
        self._failed(server)
        if server is not self.site.redirect_server():
            retry = self._next_try(self.candidates, self.site.service.stats.requests)
            if retry is not None:
                self._reach(retry, False)
                return
        self._fail(502, REFUSED)

    def server_data(self, data: bytes) -> None:
        state = self.state
        if state == WAITING or state == SENDING:
            self.active()
            self._read_response_head(data)
        elif state == RESPONDING:
            self.active()
            self._relay_body(data, 0)

    def _read_response_head(self, data: bytes) -> None:
        if self.resp_buf:
            self.resp_buf += data
            buf: bytes = bytes(self.resp_buf)
            self.resp_buf.clear()
        else:
            buf = data
        max_size = self.site.service.settings.max_head_size
        req = self.req
        assert req is not None, "a request is in flight"
        while True:
            try:
                resp = parse_response_head(buf, max_size, req.method)
            except HttpError as exc:
                self._fail(exc.status, BAD_RESPONSE)
                return
            if resp is None:
                self.resp_buf += buf
                return
            if resp.status >= 200 or resp.status == 101:
                break
            self.port.send_client(resp.raw)  # interim (100 Continue, 103 Early Hints): pass on
            buf = buf[resp.head_len :]
            if not buf:
                return
        self.resp = resp
        self.resp_started = True
        self.t_response = now = self.site.clock()
        server = self.server
        assert server is not None, "a response comes only from a server taken"
        observe(server.first_byte, now - self.t_ready)
        if resp.status == 101:
            self._switch_protocols(buf)
            return
        scheduler = self.site.service.scheduler
        if scheduler.adds_headers:
            extra = scheduler.response_headers(self.ctx, server)
            if extra:
                rest = buf[resp.head_len :]
                buf = resp.raw[:-2] + extra + b"\r\n" + rest
                resp_head_len = len(buf) - len(rest)
            else:
                resp_head_len = resp.head_len
        else:
            resp_head_len = resp.head_len
        body = resp.body
        if body == BODY_LENGTH:
            self.resp_left = resp.content_length
        elif body == BODY_CHUNKED:
            self.resp_scanner = ChunkedScanner()
        elif body == BODY_NONE:
            self.resp_left = 0
        self._enter(RESPONDING)
        self._relay_body(buf, resp_head_len)
        if self.state == RESPONDING and self.resp is resp:  # more body to come
            if body == BODY_LENGTH:
                self.port.pass_to_client(self.resp_left)
            elif body == BODY_UNTIL_CLOSE:
                self.port.pass_to_client(-1)

    def _switch_protocols(self, buf: bytes) -> None:
        """101: the response and what came with it go out, the client's bytes after its request
        go in, then bytes pass both ways as they are."""
        self.port.send_client(buf)
        pending, self.buf = bytes(self.buf), bytearray()
        if pending:
            self.port.send_server(pending)
        self._enter(TUNNEL)
        self._hold(False)
        self.port.tunnel()

    def _relay_body(self, data: bytes, start: int) -> None:
        """Send `data` (response head bytes up to `start`, body bytes after) in one write; end
        the response when complete."""
        resp = self.resp
        assert resp is not None, "its head came"
        body = resp.body
        complete = False
        if body == BODY_LENGTH or body == BODY_NONE:
            n = len(data) - start
            if n >= self.resp_left:
                if n > self.resp_left:
                    self.resp_clean = False
                    data = data[: start + self.resp_left]
                self.resp_left = 0
                complete = True
            else:
                self.resp_left -= n
        elif body == BODY_CHUNKED:
            scanner = self.resp_scanner
            assert scanner is not None, "made with the chunked response's head"
            try:
                n = start + scanner.feed(data, start)
            except HttpError:
                self._cut(BAD_RESPONSE)  # a corrupt response after its head went out
                return
            if n < len(data):
                self.resp_clean = False
                data = data[:n]
            complete = scanner.done
        if data:
            self.port.send_client(data)
        if complete:
            self._end_response()

    def passed(self, rest: bytes) -> None:
        """The body passed along unseen is through (rest: what the server sent after it)."""
        if self.state != RESPONDING:
            return
        if rest:
            self.resp_clean = False
        self.resp_left = 0
        self._end_response()

    def _end_response(self) -> None:
        req, resp = self.req, self.resp
        assert req is not None and resp is not None, "a response is going out"
        self._record(resp.status, OK, self.server)
        self.previous = self.server
        self._give_back()
        body_sent = self.body_complete and not self.body_avail
        if resp.keep_alive and resp.body != BODY_UNTIL_CLOSE and self.resp_clean and body_sent:
            self.port.release_server()
        else:
            self.port.drop_server()
        self.req = self.resp = None
        self.resp_scanner = None
        if (
            not req.keep_alive
            or resp.body == BODY_UNTIL_CLOSE
            or not body_sent
            or self.stopping
            or self.client_done
            and not self.buf
        ):
            self._enter(CLOSED)
            self.port.close_client()
            return
        self._hold(False)
        if self.buf:
            self._enter(HEAD)
            self._open()
            self._read_head(self.buf)
        else:
            self._enter(IDLE)

    def server_ended(self) -> None:
        """The server connection in use closed or failed."""
        state = self.state
        if state == SENDING or state == WAITING:
            # The server may have started on the request and died (a pooled connection may
            # also just have gone stale): only a request that is safe to repeat (RFC 9110
            # 9.2.2: idempotent, nothing to resend but its head) is sent again, elsewhere.
            req, server = self.req, self.target
            assert req is not None and server is not None, "a request is in flight"
            if not self.resp_buf and req.body == BODY_NONE and req.method in IDEMPOTENT:
                # (Not rested: it accepts connections, and a reset is one request's fate.)
                self.tried.append(server)
                stale = server if self.reused else None
                retry = self._next_try(self.candidates, self.site.service.stats.requests, stale)
                if retry is not None:
                    self._give_back()
                    self.port.drop_server()
                    self._reach(retry, retry is server)
                    return
            self._fail(502, SERVER_CLOSED)
        elif state == RESPONDING:
            assert self.resp is not None, "its head came"
            if self.resp.body == BODY_UNTIL_CLOSE:
                self._end_response()
            else:
                self._cut(SERVER_CLOSED)  # a truncated response
        elif state == TUNNEL:
            self._tunnel_done()

    def tunnel_ended(self) -> None:
        """Both ways of the tunnel ended (each end passed on)."""
        self._tunnel_done()

    def _tunnel_done(self) -> None:
        assert self.resp is not None, "a tunnel follows a 101 response"
        self._record(self.resp.status, OK, self.server)
        self._close()

    def broken(self) -> None:
        """Bytes passed along unseen could not be: a side failed or ended too early."""
        self._cut(SERVER_CLOSED)

    def lost(self) -> None:
        """The client connection is gone (a request in hand did not finish)."""
        self._cut_record(CLIENT_GONE)
        self._finish()

    # -- endings -------------------------------------------------------------------------------

    def _fail(self, status: int, cause: int) -> None:
        """Answer `status` (unless a response already started) and close the connection."""
        self.site.service.stats.errors += 1
        if self.resp_started:
            self._cut_record(cause)
        else:
            self.port.send_client(error_response(status))
            self._record(status, cause, None)
        self._close()

    def _cut(self, cause: int) -> None:
        """End the request in hand badly (`cause`) and cut the connection."""
        self._cut_record(cause)
        self._abort()

    def _cut_record(self, cause: int) -> None:
        """Record the request in hand as ended by `cause`, with the status of its answer if
        the client got some of it."""
        resp = self.resp
        if self.resp_started and resp is not None:
            self._record(resp.status, cause, self.server)
        else:
            self._record(0, cause, None)

    def _close(self) -> None:
        if _tracer is not None:
            _tracer(self.state, CLOSED)
        Exchange._close(self)

    def _abort(self) -> None:
        if _tracer is not None:
            _tracer(self.state, CLOSED)
        Exchange._abort(self)

    def timeout(self) -> None:
        state = self.state
        if state == TUNNEL:
            self._cut(TUNNEL_TIMEOUT)
        elif state == RESPONDING:
            self._cut(SERVER_TIMEOUT)
        elif state == HEAD:
            if self.buf:
                self._fail(408, CLIENT_TIMEOUT)
            else:
                self._close()
        elif state == BUFFERING:
            self._fail(408, CLIENT_TIMEOUT)
        elif state == IDLE:
            self._close()
        elif state != CLOSED:
            self._fail(504, SERVER_TIMEOUT)

    def shutdown(self) -> None:
        """The service stops: close when idle, else after the answer in flight."""
        state = self.state
        if state == IDLE or (state == HEAD and not self.buf):
            self._close()
        else:
            self.stopping = True
