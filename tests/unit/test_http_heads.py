"""Request and response heads (tcpvs.http), run against both implementations side by side."""

from __future__ import annotations

import os
from types import ModuleType

import httptools
import pytest

import tcpvs.compiled
import tcpvs.http
from tcpvs.http import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, load
from tcpvs.http.common import HttpError

BUILT = not tcpvs.compiled.WHY_PURE  # the compiled scanners run


def request_status(http: ModuleType, buf: bytes, max_size: int = 16384) -> int:
    with pytest.raises(HttpError) as caught:
        http.parse_request_head(buf, max_size)
    return caught.value.status


def response_status(http: ModuleType, buf: bytes, method: bytes = b"GET") -> int:
    with pytest.raises(HttpError) as caught:
        http.parse_response_head(buf, 16384, method)
    return caught.value.status


def fields(head: object) -> dict:
    names = ("method", "target", "version", "status", "head_len", "body", "content_length")
    names += ("keep_alive", "upgrade", "expect_continue", "raw")
    return {name: getattr(head, name) for name in names if hasattr(head, name)}


# ---------------------------------------------------------------- implementation choice


def test_the_compiled_build_is_chosen_when_built() -> None:
    if not BUILT:
        pytest.skip("the scanners are not compiled")
    forced = os.environ.get("TCPVS_PURE_PYTHON", "") not in ("", "0")
    assert tcpvs.http.IMPLEMENTATION == ("python" if forced else "cython")
    assert load("cython").HttpError is load("python").HttpError is tcpvs.http.HttpError


def test_both_builds_export_the_same_api() -> None:
    if not BUILT:
        pytest.skip("the scanners are not compiled")
    assert sorted(vars(load("cython"))) == sorted(vars(load("python")))


def test_error_is_a_tcpvs_error_with_status_and_reason(http: ModuleType) -> None:
    with pytest.raises(tcpvs.TcpvsError) as caught:
        http.parse_request_head(b"GET / HTTP/1.1\r\n\r\n", 1024)
    assert (caught.value.status, caught.value.reason) == (400, "missing Host")
    assert str(caught.value) == "400 missing Host"


# ---------------------------------------------------------------- valid requests


def test_simple_get(http: ModuleType) -> None:
    buf = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    head = http.parse_request_head(buf, 16384)
    assert fields(head) == {
        "method": b"GET",
        "target": b"/index.html?a=1",
        "version": 11,
        "head_len": len(buf),
        "body": BODY_NONE,
        "content_length": 0,
        "keep_alive": True,
        "upgrade": None,
        "expect_continue": False,
        "raw": buf,
    }
    assert type(head.raw) is bytes and type(head.method) is bytes


def test_leading_empty_lines_are_skipped_but_counted(http: ModuleType) -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    parsed = http.parse_request_head(b"\r\n\r\n" + head + b"NEXT", 1024)
    assert parsed.head_len == len(head) + 4
    assert parsed.raw == head


def test_bytearray_gives_the_same_head(http: ModuleType) -> None:
    buf = b"\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    assert fields(http.parse_request_head(bytearray(buf), 1024)) == fields(
        http.parse_request_head(buf, 1024)
    )
    assert type(http.parse_request_head(bytearray(buf), 1024).raw) is bytes


@pytest.mark.parametrize(
    ("head", "body", "length"),
    [
        (b"Content-Length: 11\r\n", BODY_LENGTH, 11),
        (b"Content-Length: 0\r\n", BODY_NONE, 0),
        (b"Content-Length: 007\r\n", BODY_LENGTH, 7),
        (b"Content-Length: 5, 5\r\n", BODY_LENGTH, 5),
        (b"Content-Length:5\r\nContent-length: 5\r\n", BODY_LENGTH, 5),
        (b"Content-Length: 9223372036854775807\r\n", BODY_LENGTH, 2**63 - 1),
        (b"Transfer-Encoding: chunked\r\n", BODY_CHUNKED, 0),
        (b"transfer-encoding: Chunked\r\n", BODY_CHUNKED, 0),
        (b"Transfer-Encoding: gzip, chunked\r\n", BODY_CHUNKED, 0),
        (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", BODY_CHUNKED, 0),
        (b"X-Content-Length: 5\r\n", BODY_NONE, 0),
    ],
)
def test_request_body_framing(http: ModuleType, head: bytes, body: int, length: int) -> None:
    buf = b"POST /up HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n"
    parsed = http.parse_request_head(buf, 1024)
    assert (parsed.body, parsed.content_length) == (body, length)


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.1", b"Connection: Keep-Alive, CLOSE\r\n", False),
        (b"1.1", b"Connection: keep-alive\r\n", True),
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
        (b"1.0", b"Connection: foo,\tKEEP-ALIVE\r\n", True),
        (b"1.0", b"Connection: close\r\nConnection: keep-alive\r\n", False),
    ],
)
def test_request_keep_alive(
    http: ModuleType, version: bytes, connection: bytes, keep_alive: bool
) -> None:
    buf = b"GET / HTTP/" + version + b"\r\nHost: a\r\n" + connection + b"\r\n"
    parsed = http.parse_request_head(buf, 1024)
    assert parsed.keep_alive is keep_alive
    assert parsed.version == int(version.replace(b".", b""))


@pytest.mark.parametrize(
    ("head", "upgrade"),
    [
        (
            b"GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n",
            b"websocket",
        ),
        (b"GET /ws HTTP/1.1\r\nUpgrade:  h2c \r\nConnection: upgrade\r\nUpgrade: x\r\n", b"h2c"),
        (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n", None),  # no Connection: upgrade
        (b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\n", None),  # nothing to upgrade to
        (b"GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n", None),
    ],
)
def test_upgrade(http: ModuleType, head: bytes, upgrade: bytes | None) -> None:
    parsed = http.parse_request_head(head + b"Host: a\r\n\r\n", 1024)
    assert parsed.upgrade == upgrade


@pytest.mark.parametrize(
    ("head", "expect"),
    [
        (b"HTTP/1.1\r\nExpect: 100-continue\r\n", True),
        (b"HTTP/1.1\r\nExpect:  100-Continue\t\r\n", True),
        (b"HTTP/1.1\r\nExpect: something-else\r\n", False),
        (b"HTTP/1.0\r\nExpect: 100-continue\r\n", False),  # RFC 9110 10.1.1: ignored in 1.0
    ],
)
def test_expect_continue(http: ModuleType, head: bytes, expect: bool) -> None:
    parsed = http.parse_request_head(b"PUT /f " + head + b"Host: a\r\n\r\n", 1024)
    assert parsed.expect_continue is expect


@pytest.mark.parametrize(
    ("line", "method", "target"),
    [
        (b"PROPFIND /dav/ HTTP/1.1", b"PROPFIND", b"/dav/"),
        (b"PATCH /item/1 HTTP/1.1", b"PATCH", b"/item/1"),
        (b"OPTIONS * HTTP/1.1", b"OPTIONS", b"*"),
        (b"CONNECT example.com:443 HTTP/1.1", b"CONNECT", b"example.com:443"),
        (b"GET http://example.com/a?b#c HTTP/1.1", b"GET", b"http://example.com/a?b#c"),
        (b"GET /caf\xc3\xa9 HTTP/1.1", b"GET", b"/caf\xc3\xa9"),
        (b"M-SEARCH * HTTP/1.1", b"M-SEARCH", b"*"),
        (b"get / HTTP/1.1", b"get", b"/"),  # methods are case-sensitive tokens
    ],
)
def test_request_line_forms(http: ModuleType, line: bytes, method: bytes, target: bytes) -> None:
    parsed = http.parse_request_head(line + b"\r\nHost: example.com\r\n\r\n", 1024)
    assert (parsed.method, parsed.target) == (method, target)


def test_header_lookup(http: ModuleType) -> None:
    buf = (
        b"GET / HTTP/1.1\r\nHost:\t example.com:8080 \t\r\nCookie: a=1; b=2\r\n"
        b"cookie: second\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9\r\nX-Inner:  a  b  \r\n\r\n"
    )
    parsed = http.parse_request_head(buf, 1024)
    assert parsed.header(b"Host") == b"example.com:8080"
    assert parsed.header(b"COOKIE") == b"a=1; b=2"  # first occurrence, any case
    assert parsed.header(b"x-empty") == b""
    assert parsed.header(b"X-Utf8") == b"caf\xc3\xa9"
    assert parsed.header(b"X-Inner") == b"a  b"
    assert parsed.header(b"Accept") is None
    assert parsed.header(b"GET / HTTP/1.1\r\nHost") is None  # never matches across lines
    assert parsed.header(b"") is None


VALID_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
    b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
]


@pytest.mark.parametrize("buf", VALID_REQUESTS)
def test_request_byte_at_a_time(http: ModuleType, buf: bytes) -> None:
    growing = bytearray()
    for byte in buf[:-1]:
        growing.append(byte)
        assert http.parse_request_head(growing, 16384) is None
        assert http.parse_request_head(bytes(growing), 16384) is None
    growing.append(buf[-1])
    assert fields(http.parse_request_head(growing, 16384)) == fields(
        http.parse_request_head(buf, 16384)
    )


def test_pipelined_requests(http: ModuleType) -> None:
    stream = (
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
        b"\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    targets = []
    while stream:
        head = http.parse_request_head(stream, 16384)
        targets.append(head.target)
        stream = stream[head.head_len + head.content_length :]
    assert targets == [b"/1", b"/2", b"/3"]
    assert head.keep_alive is False


def test_max_size(http: ModuleType) -> None:
    buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert http.parse_request_head(buf, len(buf)).head_len == len(buf)
    assert request_status(http, buf, len(buf) - 1) == 431
    assert http.parse_request_head(buf[:-1], len(buf)) is None
    assert request_status(http, buf[:-1], len(buf) - 1) == 431  # full and still no end
    assert request_status(http, b"\r\n" * 40, 64) == 431  # empty lines count too


# ---------------------------------------------------------------- hostile requests

GET = b"GET / HTTP/1.1\r\nHost: a\r\n"

HOSTILE_REQUESTS = [
    # Content-Length and Transfer-Encoding
    (GET + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    (GET + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (GET + b"Content-Length: 5, 6\r\n\r\n", 400),
    (GET + b"Content-Length: 5,\r\n\r\n", 400),
    (GET + b"Content-Length: ,5\r\n\r\n", 400),
    (GET + b"Content-Length: abc\r\n\r\n", 400),
    (GET + b"Content-Length: -5\r\n\r\n", 400),
    (GET + b"Content-Length: +5\r\n\r\n", 400),
    (GET + b"Content-Length: 5 5\r\n\r\n", 400),
    (GET + b"Content-Length: 0x10\r\n\r\n", 400),
    (GET + b"Content-Length: 1_000\r\n\r\n", 400),
    (GET + b"Content-Length: \xd9\xa5\r\n\r\n", 400),  # a non-ASCII digit
    (GET + b"Content-Length:\r\n\r\n", 400),
    (GET + b"Content-Length: 9223372036854775808\r\n\r\n", 400),
    (GET + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (GET + b"Transfer-Encoding:\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: gzip,,chunked\r\n\r\n", 400),
    (GET + b"Transfer-Encoding: identity\r\n\r\n", 501),
    (GET + b"Transfer-Encoding: foo, chunked\r\n\r\n", 501),
    (GET + b"Transfer-Encoding: chunked;ext=1\r\n\r\n", 501),
    (GET + b'Transfer-Encoding: "chunked"\r\n\r\n', 501),
    (GET + b"Transfer-Encoding: xchunked\r\n\r\n", 501),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    # field lines
    (GET + b"X-A: 1\r\n folded\r\n\r\n", 400),
    (GET + b"X-A: 1\r\n\tfolded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    (GET + b"Content-Length : 5\r\n\r\n", 400),
    (GET + b"Transfer-Encoding\t: chunked\r\n\r\n", 400),
    (GET + b": empty name\r\n\r\n", 400),
    (GET + b"X@Y: 1\r\n\r\n", 400),
    (GET + b"X(Y): 1\r\n\r\n", 400),
    (GET + b"X\xc3\xa9: 1\r\n\r\n", 400),
    (GET + b"no colon here\r\n\r\n", 400),
    (GET + b"X-A: a\x00b\r\n\r\n", 400),
    (GET + b"X-A: a\x01\r\n\r\n", 400),
    (GET + b"X-A: \x0b\r\n\r\n", 400),
    (GET + b"X-A: a\x7fb\r\n\r\n", 400),
    (GET + b"X-A: a\rb\r\n\r\n", 400),  # bare CR
    (GET + b"X-A: a\nb\r\n\r\n", 400),  # bare LF inside a line
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),  # LF line endings are refused, not tolerated
    (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # request line
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /\r\nHost: a\r\n\r\n", 400),  # HTTP/0.9
    (b"GET\r\nHost: a\r\n\r\n", 400),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/x.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTPS/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/3\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/10.10\r\nHost: a\r\n\r\n", 505),
    # Host
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n", 400),
    # incomplete but already wrong: refused at once instead of waiting for a timeout
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS ClientHello
    (b"GET / HTTP/1.1\r\nHost: a\n", 400),
    (b"GET / HTTP/1.1\nHost", 400),
    (b"GET /\r\n", 400),
    (b"GET / HTTP/2.0\r\n", 505),
    (b"GET\t", 400),
]


@pytest.mark.parametrize(("buf", "status"), HOSTILE_REQUESTS)
def test_hostile_request(http: ModuleType, buf: bytes, status: int) -> None:
    assert request_status(http, buf) == status
    assert request_status(http, bytearray(buf)) == status


@pytest.mark.parametrize(("buf", "status"), HOSTILE_REQUESTS)
def test_hostile_request_is_refused_by_both_alike(buf: bytes, status: int) -> None:
    if not BUILT:
        pytest.skip("the scanners are not compiled")
    errors = []
    for name in ("python", "cython"):
        with pytest.raises(HttpError) as caught:
            load(name).parse_request_head(buf, 16384)
        errors.append((caught.value.status, caught.value.reason))
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    "buf",
    [b"", b"\r", b"\r\n", b"\r\n\r", b"G", b"GET", b"GET ", b"GET /x", b"GET / HTTP/1.1\r"],
)
def test_incomplete_request(http: ModuleType, buf: bytes) -> None:
    assert http.parse_request_head(buf, 1024) is None


# ---------------------------------------------------------------- responses


OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
NONE, LENGTH, UNTIL_CLOSE = BODY_NONE, BODY_LENGTH, BODY_UNTIL_CLOSE


@pytest.mark.parametrize(
    ("method", "buf", "expected"),  # expected: status, body, content_length, keep_alive
    [
        (b"GET", OK + b"Content-Length: 12\r\n", (200, LENGTH, 12, True)),
        (b"GET", OK + b"Content-Length: 0\r\n", (200, NONE, 0, True)),
        (b"GET", OK + b"Content-Length: 3, 3\r\n", (200, LENGTH, 3, True)),
        (b"GET", OK + CHUNKED, (200, BODY_CHUNKED, 0, True)),
        (b"GET", OK + b"Transfer-Encoding: gzip\r\n", (200, UNTIL_CLOSE, 0, False)),
        (b"GET", OK, (200, UNTIL_CLOSE, 0, False)),
        (b"GET", b"HTTP/1.0 200 OK\r\n", (200, UNTIL_CLOSE, 0, False)),
        (b"HEAD", OK + b"Content-Length: 100\r\n", (200, NONE, 0, True)),
        (b"HEAD", OK + CHUNKED, (200, NONE, 0, True)),
        (b"POST", b"HTTP/1.1 100 Continue\r\n", (100, NONE, 0, True)),
        (b"GET", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n", (103, NONE, 0, True)),
        (b"DELETE", b"HTTP/1.1 204 No Content\r\n", (204, NONE, 0, True)),
        (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n", (304, NONE, 0, True)),
        (b"GET", b"HTTP/1.1 101 Switching\r\nConnection: upgrade\r\n", (101, NONE, 0, False)),
        (b"CONNECT", b"HTTP/1.1 200 Connection established\r\n", (200, NONE, 0, False)),
        (b"CONNECT", b"HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n", (407, LENGTH, 2, True)),
        (b"GET", OK + b"Connection: close\r\nContent-Length: 1\r\n", (200, LENGTH, 1, False)),
        (b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n", (200, LENGTH, 1, False)),
        (
            b"GET",
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n",
            (200, LENGTH, 1, True),
        ),
        (b"GET", b"HTTP/1.1 404\r\nContent-Length: 1\r\n", (404, LENGTH, 1, True)),
        (b"GET", b"HTTP/1.1 500 \r\nContent-Length: 1\r\n", (500, LENGTH, 1, True)),
        (b"GET", b"HTTP/1.1 599 Odd \t reason \xc3\xa9\r\n", (599, UNTIL_CLOSE, 0, False)),
    ],
)
def test_response(http: ModuleType, method: bytes, buf: bytes, expected: tuple) -> None:
    buf += b"\r\n"
    parsed = http.parse_response_head(buf + b"BODY", 16384, method)
    assert (parsed.status, parsed.body, parsed.content_length, parsed.keep_alive) == expected
    assert type(parsed.keep_alive) is bool
    assert (parsed.head_len, parsed.raw) == (len(buf), buf)
    assert parsed.version == (10 if buf.startswith(b"HTTP/1.0") else 11)


def test_response_header_lookup(http: ModuleType) -> None:
    parsed = http.parse_response_head(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n", 1024, b"GET"
    )
    assert parsed.header(b"Set-Cookie") == b"a=1"
    assert parsed.header(b"Server") is None


def test_interim_then_final_response(http: ModuleType) -> None:
    stream = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    first = http.parse_response_head(stream, 1024, b"PUT")
    second = http.parse_response_head(stream[first.head_len :], 1024, b"PUT")
    assert (first.status, second.status, second.body) == (100, 201, BODY_NONE)


def test_response_byte_at_a_time(http: ModuleType) -> None:
    buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n"
    for end in range(len(buf)):
        assert http.parse_response_head(buf[:end], 1024, b"GET") is None
        assert http.parse_response_head(bytearray(buf[:end]), 1024, b"GET") is None
    assert http.parse_response_head(bytearray(buf), 1024, b"GET").content_length == 5


MALFORMED_RESPONSES = [
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.2 200 OK\r\n\r\n",
    b"http/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 099 Low\r\n\r\n",
    b"HTTP/1.1 600 High\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n",
    b"HTTP/1.1 200OK\r\n\r\n",
    b"HTTP/1.1 200 O\x01K\r\n\r\n",
    b"ICY 200 OK\r\n\r\n",
    OK + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    OK + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
    OK + b"Content-Length: -1\r\n\r\n",
    OK + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
    OK + b"Transfer-Encoding: br, chunked\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    OK + b"X-A: 1\r\n folded\r\n\r\n",
    OK + b"Server : x\r\n\r\n",
    OK + b"X-A: \x00\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
    b"\r\nHTTP/1.1 200 OK\r\n\r\n",  # no empty lines before a response
]


@pytest.mark.parametrize("buf", MALFORMED_RESPONSES)
def test_malformed_response_is_502(http: ModuleType, buf: bytes) -> None:
    assert response_status(http, buf) == 502


@pytest.mark.parametrize(
    "buf", [b"XTTP/1.1", b"HTTP/1.1 200 OK\n", b"HTTP/1.1 200 OK\r\nX: 1\rY", b"HTTP/9 200\r\n"]
)
def test_incomplete_but_wrong_response_is_502_at_once(http: ModuleType, buf: bytes) -> None:
    assert response_status(http, buf) == 502


def test_response_head_too_large_is_502(http: ModuleType) -> None:
    buf = OK + b"Server: " + b"x" * 100 + b"\r\n\r\n"
    assert http.parse_response_head(buf, len(buf), b"GET").head_len == len(buf)
    with pytest.raises(HttpError) as caught:
        http.parse_response_head(buf, len(buf) - 1, b"GET")
    assert caught.value.status == 502
    with pytest.raises(HttpError):
        http.parse_response_head(buf[:50], 50, b"GET")


# ---------------------------------------------------------------- error responses

ERROR_STATUSES = {
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


@pytest.mark.parametrize(("status", "reason"), sorted(ERROR_STATUSES.items()))
def test_error_response(http: ModuleType, status: int, reason: str) -> None:
    data = http.error_response(status)
    seen: dict = {}

    class Recorder:
        def on_status(self, value: bytes) -> None:
            seen["reason"] = value.decode()

        def on_body(self, value: bytes) -> None:
            seen["body"] = seen.get("body", b"") + value

        def on_message_complete(self) -> None:
            seen["complete"] = True

    parser = httptools.HttpResponseParser(Recorder())
    parser.feed_data(data)
    assert (parser.get_status_code(), seen["reason"]) == (status, reason)
    assert seen["complete"] and not parser.should_keep_alive()
    assert seen["body"] == f"{status} {reason}\n".encode()
    ours = http.parse_response_head(data, 1024, b"GET")
    assert (ours.status, ours.keep_alive, ours.content_length) == (status, False, len(seen["body"]))
    assert ours.header(b"connection") == b"close"
    assert ours.header(b"content-type").startswith(b"text/plain")
