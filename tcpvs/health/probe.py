"""One active health check against one server: `probe` does the I/O (asyncio streams, one
deadline for the whole check); `Answer` judges what comes back, sans-IO."""

from __future__ import annotations

import asyncio
import os
import time

import regex

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
__all__ = ["Answer", "CheckResult", "probe", "request"]

HEAD_LIMIT = 16 * 1024
BODY_LIMIT = 64 * 1024
READ_SIZE = 16 * 1024


def request(spec: CheckSpec, host: str, port: int) -> bytes:
    """The check's request; Host is the server's address unless the spec names one."""
    host_header = spec.host or format_address(Address(host, port))
    return (
        f"{spec.method} {spec.path} HTTP/1.1\r\nHost: {host_header}\r\n"
        "Connection: close\r\nUser-Agent: tcpvs-check\r\n\r\n"
    ).encode()


class Answer:
    """What a server answers to a check, judged as its bytes come: `connected()`, then
    `feed(data)` and `end()` at EOF, until `done`; then `ok`, `status` and `error` tell."""

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
        found = regex.search(self.spec.body, body.decode("utf-8", "replace"))
        self._finish(found is not None, None if found else "body did not match")


def _os_error(exc: OSError) -> str:
    """The errno's words ("connection refused"), not the wrapper's message (asyncio says
    "Connect call failed ('127.0.0.1', 9)")."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def _check(spec: CheckSpec, host: str, port: int, answer: Answer) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        answer.connected()
        if not answer.done:
            writer.write(request(spec, host, port))
        while not answer.done:
            data = await reader.read(READ_SIZE)
            if data:
                answer.feed(data)
            else:
                answer.end()
    finally:
        writer.close()


async def probe(spec: CheckSpec, host: str, port: int) -> CheckResult:
    """Check the server at host:port (spec.port instead, when set) once, within
    spec.timeout. Network failures are results, never exceptions."""
    started, wall = time.monotonic(), time.time()
    answer = Answer(spec)
    try:
        async with asyncio.timeout(spec.timeout):
            await _check(spec, host, spec.port or port, answer)
    except TimeoutError:
        answer.fail("timeout")
    except OSError as exc:
        answer.fail(_os_error(exc))
    duration_ms = (time.monotonic() - started) * 1000
    return CheckResult(answer.ok, answer.status, answer.error, duration_ms, wall)
