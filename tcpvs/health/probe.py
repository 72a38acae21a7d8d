"""Active health checks' I/O: a `Prober` runs any number of checks at once on non-blocking
sockets, with no task, future, transport or timer per check; `probe` runs one. `Answer`
judges what a server answers, sans-IO.

The prober's sockets sit in an epoll set of its own, whose one descriptor the event loop
watches: a check costs the loop nothing until its socket is ready, then one call. Each socket
is registered once, edge-triggered (so it need not be modified between connecting and
reading), and a closed socket leaves the set by itself: an http check makes six system calls
(socket, connect, epoll_ctl, send, recv, close), a tcp check four. The deadlines share one
loop timer (an Agenda).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import select
import socket
import time
from collections.abc import Callable

import regex

from tcpvs.health.agenda import Agenda
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import CheckSpec
from tcpvs.http import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    ChunkedScanner,
    HttpError,
    ResponseHead,
    parse_response_head,
)
from tcpvs.table.addr import Address, format_address

# CheckResult is here too: a check's outcome comes from its prober.
__all__ = ["Answer", "Check", "CheckResult", "Prober", "Target", "probe", "request"]

HEAD_LIMIT = 16 * 1024
BODY_LIMIT = 64 * 1024
READ_SIZE = 16 * 1024
# Deadlines are noticed together, at most this late: one wake-up for the timeouts of 10 ms.
DEADLINE_WINDOW = 0.01

_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
# A tcp check waits for the connection only; an http check for it, then the answer.
_TCP_EVENTS = select.EPOLLOUT | select.EPOLLET
_HTTP_EVENTS = select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_READABLE = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR


def request(spec: CheckSpec, host: str, port: int) -> bytes:
    """The check's request; Host is the server's address unless the spec names one."""
    host_header = spec.host or format_address(Address(host, port))
    return (
        f"{spec.method} {spec.path} HTTP/1.1\r\nHost: {host_header}\r\n"
        "Connection: close\r\nUser-Agent: tcpvs-check\r\n\r\n"
    ).encode()


@functools.lru_cache(maxsize=1024)
def _pattern(body: str) -> regex.Pattern[str]:
    """A body regex compiled once, not looked up in `regex`'s own cache at every check."""
    return regex.compile(body)


class Answer:
    """What a server answers to a check, judged as its bytes come: `connected()`, then
    `feed(data)` and `end()` at EOF, until `done`; then `ok`, `status` and `error` tell."""

    __slots__ = ("spec", "done", "ok", "status", "error", "_buf", "_head", "_chunks", "_scanned")

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec
        self.done = False
        self.ok = False
        self.status: int | None = None
        self.error: str | None = None
        self._buf = bytearray()
        self._head: ResponseHead | None = None
        self._chunks: ChunkedScanner | None = None
        self._scanned = 0  # bytes of a chunked body the scanner has seen

    def connected(self) -> None:
        if self.spec.kind == "tcp":
            self._finish(True, None)

    def fail(self, error: str) -> None:
        """The check broke off (timeout, network error): keep what was learnt so far."""
        self._finish(False, error)

    def feed(self, data: bytes) -> None:
        self._buf += data
        if self._head is None:
            self._read_head()
        if self._head is not None and not self.done:
            self._read_body(eof=False)

    def end(self) -> None:
        if self._head is None:
            self.fail("bad response" if self._buf else "no response")
        else:
            self._read_body(eof=True)

    def _finish(self, ok: bool, error: str | None) -> None:
        if not self.done:
            self.done, self.ok, self.error = True, ok, error

    def _read_head(self) -> None:
        try:
            head = parse_response_head(self._buf, HEAD_LIMIT, self.spec.method.encode())
        except HttpError:
            self.fail("bad response")
            return
        if head is None:
            return
        self._head, self.status = head, head.status
        del self._buf[: head.head_len]
        low, high = self.spec.expect
        if not low <= head.status <= high:
            self._finish(False, None)  # the status says it all: "HTTP 500"
        elif self.spec.body is None:
            self._finish(True, None)
        elif head.body == BODY_CHUNKED:
            self._chunks = ChunkedScanner()

    def _read_body(self, eof: bool) -> None:
        """Judge the body once it is complete, at BODY_LIMIT bytes, or at EOF. A chunked one
        is searched with its framing: the server may ignore `Connection: close`, so its end
        is found by the scanner, not waited for."""
        assert self._head is not None
        complete = len(self._buf) >= BODY_LIMIT
        if self._head.body == BODY_NONE:
            complete = True
        elif self._head.body == BODY_LENGTH:
            complete = complete or len(self._buf) >= self._head.content_length
            if eof and not complete:
                self.fail("bad response")  # cut short
                return
        elif self._chunks is not None:
            try:
                self._scanned += self._chunks.feed(self._buf, self._scanned)
            except HttpError:
                self.fail("bad response")
                return
            complete = complete or self._chunks.done
        if complete or eof:
            self._match(bytes(self._buf[:BODY_LIMIT]))

    def _match(self, body: bytes) -> None:
        assert self.spec.body is not None
        found = _pattern(self.spec.body).search(body.decode("utf-8", "replace"))
        self._finish(found is not None, None if found else "body did not match")


def _error_text(code: int) -> str:
    """The errno's words: "connection refused"."""
    return os.strerror(code).lower()


def _os_error(exc: OSError) -> str:
    """The errno's words, not the exception's message."""
    return _error_text(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)


class Target:
    """What one server's checks connect to and send, worked out once for all its checks:
    `spec.port`, when set, in place of `port`; the request of an http check."""

    __slots__ = ("spec", "family", "sockaddr", "request")

    def __init__(self, spec: CheckSpec, host: str, port: int) -> None:
        """`host` is a numeric address, as tables keep them (resolving a name here would
        stop the loop); ValueError if not."""
        self.spec = spec
        port = spec.port or port
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )[0]
        except socket.gaierror as exc:
            raise ValueError(f"cannot check {host!r}: not a numeric address") from exc
        self.family = family
        self.sockaddr = sockaddr
        self.request = request(spec, host, port) if spec.kind == "http" else b""


class Check:
    """One check in flight: its socket and how far it got. Its prober calls `on_result`
    once, never from within `Prober.start`, unless the check is cancelled."""

    __slots__ = (
        "answer",
        "on_result",
        "over",
        "sock",
        "deadline",
        "_unsent",
        "_connected",
        "_started",
        "_wall",
    )

    def __init__(self, target: Target, on_result: Callable[[CheckResult], None]) -> None:
        self.answer = Answer(target.spec)
        self.on_result: Callable[[CheckResult], None] | None = on_result
        self.over = False  # the socket is closed
        self.sock: socket.socket | None = None
        self.deadline = 0.0  # (loop time) once started
        self._unsent = target.request
        self._connected = False
        self._started, self._wall = time.monotonic(), time.time()

    def result(self) -> CheckResult:
        answer = self.answer
        duration_ms = (time.monotonic() - self._started) * 1000
        return CheckResult(answer.ok, answer.status, answer.error, duration_ms, self._wall)

    def on_events(self, events: int) -> bool:
        """Go as far as the socket's readiness (epoll's `events`) allows; True once over."""
        answer, sock = self.answer, self.sock
        assert sock is not None
        if not self._connected:
            if events & select.EPOLLERR:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    answer.fail(_error_text(code))
                    return True
            self._connected = True
            answer.connected()
            if answer.done:
                return True
        if self._unsent:
            try:
                sent = sock.send(self._unsent)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                answer.fail(_os_error(exc))
                return True
            self._unsent = self._unsent[sent:]  # the rest when the socket is writable again
        if events & _READABLE:
            # Up to EAGAIN, EOF or the verdict: edge-triggered, the socket is not reported
            # again for data already there.
            while not answer.done:
                try:
                    data = sock.recv(READ_SIZE)
                except BlockingIOError:
                    return False
                except OSError as exc:
                    answer.fail(_os_error(exc))
                    break
                if data:
                    answer.feed(data)
                else:
                    answer.end()
        return answer.done


class Prober:
    """Runs checks on the loop: `start(target, on_result)` for each; `cancel(check)` ends one
    with no result, `close()` all that still run."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._checks: dict[int, Check] = {}  # by socket descriptor
        self._deadlines: Agenda[Check] = Agenda(loop, self._expire, DEADLINE_WINDOW)
        loop.add_reader(self._epoll.fileno(), self._ready)

    def __len__(self) -> int:
        """The checks running."""
        return len(self._checks)

    def start(self, target: Target, on_result: Callable[[CheckResult], None]) -> Check:
        check = Check(target, on_result)
        try:
            check.sock = sock = socket.socket(target.family, _STREAM)
            code = sock.connect_ex(target.sockaddr)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, os.strerror(code))
            fd = sock.fileno()
            self._epoll.register(fd, _HTTP_EVENTS if target.request else _TCP_EVENTS)
        except OSError as exc:  # out of descriptors or ports, no route...
            check.answer.fail(_os_error(exc))
            self._end(check)
            self._loop.call_soon(self._deliver, [check])
            return check
        self._checks[fd] = check
        check.deadline = self._loop.time() + target.spec.timeout
        self._deadlines.add(check.deadline, check)
        return check

    def cancel(self, check: Check) -> None:
        check.on_result = None
        if not check.over:
            self._end(check)

    def close(self) -> None:
        for check in list(self._checks.values()):
            self.cancel(check)
        self._deadlines.close()
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()

    def _end(self, check: Check) -> None:
        check.over = True
        self._deadlines.discard(check.deadline, check)  # (not left for its deadline: see Agenda)
        if check.sock is not None:
            self._checks.pop(check.sock.fileno(), None)
            check.sock.close()  # which also takes it out of the epoll set

    def _ready(self) -> None:
        over = []
        checks = self._checks
        for fd, events in self._epoll.poll(0):
            check = checks.get(fd)
            if check is not None and check.on_events(events):
                self._end(check)
                over.append(check)
        # The results after the batch's I/O: a check started by `on_result` could be given a
        # descriptor closed above, and then an event of this batch that is not its own.
        self._deliver(over)

    def _expire(self, checks: list[Check]) -> None:
        for check in checks:
            check.answer.fail("timeout")
            self._end(check)
        self._deliver(checks)

    def _deliver(self, checks: list[Check]) -> None:
        for check in checks:
            on_result, check.on_result = check.on_result, None
            if on_result is None:
                continue  # cancelled
            try:
                on_result(check.result())
            except Exception as exc:  # one owner's error must not lose the others' results
                self._loop.call_exception_handler(
                    {"message": "a health check's result callback failed", "exception": exc}
                )


async def probe(spec: CheckSpec, host: str, port: int) -> CheckResult:
    """Check the server at host:port (spec.port instead, when set) once, within
    spec.timeout. `host` is a numeric address. Network failures are results, never
    exceptions."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[CheckResult] = loop.create_future()

    def settle(outcome: CheckResult) -> None:
        if not result.done():  # else cancelled, and the prober is being closed
            result.set_result(outcome)

    prober = Prober(loop)
    try:
        prober.start(Target(spec, host, port), settle)
        return await result
    finally:
        prober.close()
