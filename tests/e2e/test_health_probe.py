"""One health check against real servers on loopback: the test backend, closed ports, and
servers of the test's own that answer badly, late or never; on asyncio and on uvloop (the
daemon's loop)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tcpvs.health.probe import probe
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import parse_check
from tests.support.procs import Backend, free_port, start_backend, stop

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
WAIT = 5.0  # seconds: the bound of every wait for a server of the test


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    server = start_backend(tmp_path_factory.mktemp("health"), "r1")
    yield server
    stop(server.proc)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    return asyncio.run if request.param == "asyncio" else uvloop.run


def check(run: Callable, text: str, port: int, host: str = "127.0.0.1") -> CheckResult:
    spec = parse_check(text)
    assert spec is not None
    return run(probe(spec, host, port))


async def against(handler: Handler, text: str) -> tuple[CheckResult, list[bytes]]:
    """Check a server of this test whose connections `handler` serves; also what the server
    read up to the check's end of the connection (its EOF), to show the check closed it."""
    reads: list[bytes] = []
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handler(reader, writer)
        reads.append(await reader.read())  # until the prober closes
        closed.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        spec = parse_check(text)
        assert spec is not None
        result = await probe(spec, "127.0.0.1", server.sockets[0].getsockname()[1])
        await asyncio.wait_for(closed.wait(), WAIT)
    return result, reads


def answering(answer: bytes) -> Handler:
    """A server that reads the request's head, then answers `answer` (and leaves the
    connection open: `against` then waits for the prober to close it)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)

    return handler


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that accepts and says nothing."""


# -- the test backend ----------------------------------------------------------------------


def test_an_error_status_fails(run: Callable, backend: Backend) -> None:
    result = check(run, "http /status/500", backend.port)
    assert (result.ok, result.status, result.error) == (False, 500, None)
    assert result.describe() == "HTTP 500"


def test_a_status_in_the_expected_range_passes(run: Callable, backend: Backend) -> None:
    result = check(run, "http /status/200", backend.port)
    assert (result.ok, result.status, result.error) == (True, 200, None)
    assert check(run, "http /status/503 expect 500-599", backend.port).ok
    assert not check(run, "http /status/204 expect 200", backend.port).ok
    assert 0 < result.duration_ms < 1000


def test_the_request_is_what_the_spec_says(run: Callable, backend: Backend) -> None:
    check(run, "http HEAD /ready", backend.port)
    request = backend.requests()[-1]
    assert (request["method"], request["path"], request["body_len"]) == ("HEAD", "/ready", 0)
    assert request["headers"] == [
        ["Host", f"127.0.0.1:{backend.port}"],
        ["Connection", "close"],
        ["User-Agent", "tcpvs-check"],
    ]
    check(run, "http OPTIONS /x?y=1 host app.example:8080", backend.port)
    request = backend.requests()[-1]
    assert (request["method"], request["path"]) == ("OPTIONS", "/x?y=1")
    assert request["headers"][0] == ["Host", "app.example:8080"]


def test_the_body_regex_must_be_found(run: Callable, backend: Backend) -> None:
    # the backend answers "NAME METHOD PATH\n"
    assert check(run, r'http /hello body "^r1 GET /hel+o$"', backend.port).ok
    result = check(run, "http /hello body r2", backend.port)
    assert (result.ok, result.status, result.error) == (False, 200, "body did not match")
    assert result.describe() == "HTTP 200, body did not match"


def test_the_body_is_read_however_it_is_framed(run: Callable, backend: Backend) -> None:
    # /chunked keeps the connection open regardless: the chunked framing tells its end
    chunked = check(run, "http /chunked/3 body chunk timeout 1.5", backend.port)
    assert (chunked.ok, chunked.error) == (True, None)
    assert check(run, "http /close body r1 timeout 1.5", backend.port).ok  # until close
    # only the first 64 KiB of a larger body is searched
    assert check(run, "http /big/200000 body x{65536}", backend.port).ok
    result = check(run, "http /big/200000 body x{65537}", backend.port)
    assert result.error == "body did not match"


def test_the_check_port_replaces_the_traffic_port(run: Callable, backend: Backend) -> None:
    assert check(run, f"http /status/200 port {backend.port}", free_port()).ok
    assert check(run, f"tcp port {backend.port}", free_port()).ok


def test_a_tcp_check_connects(run: Callable, backend: Backend) -> None:
    result = check(run, "tcp", backend.port)
    assert (result.ok, result.status, result.error) == (True, None, None)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
def test_ipv6_servers_are_checked(run: Callable, tmp_path: Path) -> None:
    server = start_backend(tmp_path, "six", options=("--host", "::1"))
    try:
        assert check(run, "http /status/200", server.port, host="::1").ok
        assert server.requests()[-1]["headers"][0] == ["Host", f"[::1]:{server.port}"]
        assert check(run, "tcp", server.port, host="::1").ok
    finally:
        stop(server.proc)
    assert check(run, "tcp", server.port, host="::1").error == "connection refused"


# -- servers that are not there, or not right ------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "tcp"])
def test_a_closed_port_is_refused(run: Callable, kind: str) -> None:
    result = check(run, kind, free_port())
    assert (result.ok, result.status, result.error) == (False, None, "connection refused")


def test_a_server_that_never_answers_times_out(run: Callable) -> None:
    with socket.socket() as silent:  # connections complete in the kernel, nobody reads them
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        result = check(run, "http timeout 0.5", silent.getsockname()[1])
    assert (result.ok, result.status, result.error) == (False, None, "timeout")
    assert 450 <= result.duration_ms < 500 + WAIT * 1000


def test_a_stalled_body_times_out_with_the_status_known(run: Callable) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"
    result, reads = run(against(answering(answer), "http body ok timeout 0.3"))
    assert (result.ok, result.status, result.error) == (False, 200, "timeout")
    assert reads == [b""]  # the prober closed the connection


@pytest.mark.parametrize(
    "answer, error",
    [
        (b"", "no response"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "bad response"),  # cut in the head
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "bad response"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 17000, "bad response"),  # a head over 16 KiB
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok", "bad response"),  # cut in the body
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad response"),
    ],
)
def test_a_bad_answer_fails(run: Callable, answer: bytes, error: str) -> None:
    async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answering(answer)(reader, writer)
        writer.close()  # the prober's read sees the end

    result, _ = run(against(close_after, "http body ok timeout 1.5"))
    assert (result.ok, result.error) == (False, error)


def test_the_check_closes_a_connection_the_server_keeps(run: Callable) -> None:
    answer = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for handler, text in ((answer, "http"), (answer, "http body ok"), (silent, "tcp")):
        result, reads = run(against(handler, f"{text} timeout 1.5"))
        assert result.ok and reads == [b""], text  # nothing after the request, then its end
