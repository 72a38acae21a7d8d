"""Differential tests of tcpvs.http: against llhttp (httptools) on what both accept, and the
pure-Python and Cython implementations against each other on generated and mangled input.
"""

from __future__ import annotations

from types import ModuleType
from typing import TypeVar

import httptools
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tcpvs.compiled
from tcpvs.http import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, load
from tcpvs.http.common import TCHAR, HttpError

T = TypeVar("T")
BUILT = not tcpvs.compiled.WHY_PURE  # the compiled scanners run
needs_cython = pytest.mark.skipif(not BUILT, reason="the scanners are not compiled")


# ---------------------------------------------------------------- against llhttp


class Recorder:
    def __init__(self) -> None:
        self.url = b""
        self.body = b""
        self.complete = 0
        self.keep_alive: bool | None = None
        self.parser: httptools.HttpRequestParser | None = None

    def on_headers_complete(self) -> None:
        # llhttp forgets the connection flags once the message is complete: ask now.
        self.keep_alive = self.parser.should_keep_alive()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1


def llhttp(message: bytes) -> tuple[Recorder, httptools.HttpRequestParser]:
    recorder = Recorder()
    parser = recorder.parser = httptools.HttpRequestParser(recorder)
    parser.feed_data(message)
    return recorder, parser


def message_length(http: ModuleType, message: bytes) -> int:
    """Where our framing says the message ends."""
    head = http.parse_request_head(message, 16384)
    if head.body == BODY_NONE:
        return head.head_len
    if head.body == BODY_LENGTH:
        return head.head_len + head.content_length
    assert head.body == BODY_CHUNKED
    scanner = http.ChunkedScanner()
    used = scanner.feed(message, head.head_len)
    assert scanner.done
    return head.head_len + used


AGREED = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n",
    b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PROPFIND /dav HTTP/1.1\r\nHost: a\r\nDepth: 1\r\nContent-Length: 4\r\n\r\n<a/>",
    b"PATCH /x HTTP/1.1\r\nHost: a\r\nContent-Length:  3 \r\n\r\nabc",
    b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
    b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    b"POST /f HTTP/1.0\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'3;ext=1;q="v"\r\nabc\r\n0\r\nTrailer: t\r\n\r\n',
    b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    b"DELETE /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Tabs:\t v \t\r\nX-Utf8: \xc3\xa9\r\n\r\n",
    b"\r\nGET /after-empty-line HTTP/1.1\r\nHost: a\r\n\r\n",
]


@pytest.mark.parametrize("message", AGREED)
def test_agrees_with_llhttp(http: ModuleType, message: bytes) -> None:
    recorder, parser = llhttp(message)
    assert recorder.complete == 1
    head = http.parse_request_head(message, 16384)
    assert head.method == parser.get_method()
    assert head.target == recorder.url
    assert head.version == {"1.0": 10, "1.1": 11}[parser.get_http_version()]
    assert head.keep_alive == recorder.keep_alive
    assert message_length(http, message) == len(message)
    if head.body == BODY_LENGTH:
        assert recorder.body == message[head.head_len :]


AMBIGUOUS = [
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
    b"\r\n",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\nHost: a\nContent-Length: 4\n\n",
    b"POST / HTTP/1.1\r\nHost: a\rContent-Length: 4\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
]


@pytest.mark.parametrize("message", AMBIGUOUS)
def test_ambiguous_is_refused(http: ModuleType, message: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        http.parse_request_head(message, 16384)
    assert caught.value.status in (400, 501)


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhello\r\n0\r\n\r\n",
        b'1;a=b\r\nx\r\n2;c="d"\r\nyz\r\n0\r\nT: v\r\n\r\n',
        b"10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",
    ],
)
def test_chunked_end_agrees_with_llhttp(http: ModuleType, body: bytes) -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    recorder, _ = llhttp(head + body)
    assert recorder.complete == 1
    scanner = http.ChunkedScanner()
    assert scanner.feed(body + head) == len(body) and scanner.done


# ---------------------------------------------------------------- the twins against each other


def outcome(call, *args) -> object:  # noqa: ANN001 - a parse function of either implementation
    """Everything a caller can see of one call: the head's fields, or the error."""
    try:
        head = call(*args)
    except HttpError as exc:
        return ("error", exc.status, exc.reason)
    if head is None:
        return None
    names = ("method", "target", "version", "status", "head_len", "body", "content_length")
    names += ("keep_alive", "upgrade", "expect_continue", "raw")
    seen = {name: getattr(head, name) for name in names if hasattr(head, name)}
    for name in (b"host", b"Cookie", b"content-length", b"X-A", b"Connection", b"nope"):
        seen[name] = head.header(name)
    return seen


def strings(alphabet: bytes, max_size: int) -> st.SearchStrategy[bytes]:
    """Non-empty byte strings drawn from `alphabet`."""
    return st.lists(st.sampled_from(alphabet), min_size=1, max_size=max_size).map(bytes)


def mostly(usual: T, *odd: T) -> st.SearchStrategy[T]:
    """`usual` nine times out of ten, else one of `odd`."""
    return st.sampled_from([usual] * 9 * len(odd) + list(odd)) if odd else st.just(usual)


EOL = mostly(b"\r\n", b"\n", b"\r", b"\r\r\n", b" \r\n")
# (name, values): framing fields with their tricky values, then the rest.
FIELDS = {
    b"Content-Length": [b"5", b"0", b"5, 5", b"5,6", b"-1", b"", b"007", b"9" * 19, b"9" * 25],
    b"Transfer-Encoding": [b"chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b""],
    b"Connection": [b"close", b"keep-alive", b"Upgrade, keep-alive", b"x,,CLOSE", b""],
    b"Upgrade": [b"websocket", b"h2c", b""],
    b"Expect": [b"100-continue", b"100-Continue", b"other"],
    b"Host": [b"a", b"example.com:80", b"[::1]:8080", b"a b", b"a/b", b""],
    b"Cookie": [b"a=b; c=d", b" \t x \t", b"caf\xc3\xa9", b""],
}
FIELDS[b"transfer-ENCODING"] = FIELDS[b"Transfer-Encoding"]
FIELDS[b"content-length"] = FIELDS[b"Content-Length"]

field_lines = st.tuples(
    st.sampled_from(sorted(FIELDS)).flatmap(
        lambda name: st.tuples(
            mostly(name, b"", b"X(", b"Ho st"),
            mostly(b": ", b":", b":\t", b" :", b"", b": \x01"),
            st.sampled_from(FIELDS[name]) | st.binary(max_size=4),
        )
    ),
    EOL,
).map(lambda line: b"".join(line[0]) + line[1])

request_lines = st.tuples(
    mostly(b"", b"\r\n", b"\r\n\r\n", b"\n"),
    st.sampled_from([b"GET", b"POST", b"PUT", b"PROPFIND", b"get"])
    | strings(TCHAR, 8)
    | st.sampled_from([b"G(T", b""]),
    mostly(b" ", b"  ", b"\t"),
    st.sampled_from([b"/", b"/a?b=c", b"*", b"http://h/x", b"/\xc3\xa9", b"/a b", b"/\x01"]),
    mostly(b" ", b"  "),
    st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0"] * 3 + [b"HTTP/2.0", b"HTTP/3", b"HTTP/1."]),
    EOL,
    mostly(b"Host: h\r\n", b""),
).map(b"".join)

status_lines = st.tuples(
    mostly(b"HTTP/1.1 ", b"HTTP/1.0 ", b"HTTP/2 ", b"HTTP/1.1  ", b"XTTP/1.1 "),
    st.sampled_from([b"200", b"101", b"100", b"204", b"304", b"404"])
    | st.sampled_from([b"099", b"600", b"20"]),
    mostly(b" OK", b"", b" ", b" Odd\treason", b" \x01"),
    EOL,
).map(b"".join)


def message(start_lines: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(
        start_lines,
        st.lists(field_lines, max_size=5).map(b"".join),
        mostly(b"\r\n", b"\n", b"", b"\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"),
    ).map(b"".join)


def mangled(data: st.DataObject, buf: bytes) -> bytes:
    """`buf` with a few bytes replaced, inserted or deleted, and maybe cut short."""
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        at = data.draw(st.integers(0, len(buf)))
        new = data.draw(st.binary(max_size=2) | st.sampled_from([b"\r\n", b"\n", b"\r", b" "]))
        cut = data.draw(st.integers(0, 2))
        buf = buf[:at] + new + buf[at + cut :]
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    return buf


@needs_cython
@settings(max_examples=1500, deadline=None)
@given(buf=message(request_lines), data=st.data(), max_size=mostly(16384, 16, 64))
@example(buf=b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", data=None, max_size=16384)
def test_twins_agree_on_requests(buf: bytes, data: st.DataObject | None, max_size: int) -> None:
    if data is not None:
        buf = mangled(data, buf)
    pure, fast = load("python"), load("cython")
    expected = outcome(pure.parse_request_head, buf, max_size)
    assert outcome(fast.parse_request_head, buf, max_size) == expected
    assert outcome(fast.parse_request_head, bytearray(buf), max_size) == expected


@needs_cython
@settings(max_examples=1000, deadline=None)
@given(
    buf=message(status_lines),
    data=st.data(),
    method=st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"]),
)
def test_twins_agree_on_responses(buf: bytes, data: st.DataObject, method: bytes) -> None:
    buf = mangled(data, buf)
    pure, fast = load("python"), load("cython")
    expected = outcome(pure.parse_response_head, buf, 16384, method)
    assert outcome(fast.parse_response_head, buf, 16384, method) == expected
    assert outcome(fast.parse_response_head, bytearray(buf), 16384, method) == expected


EXTENSIONS = [b"", b";a", b";a=b", b' ; a = "q\\"x" ;b', b";a=", b";", b" ", b';a="\r"', b";a b"]
chunks = st.tuples(
    st.binary(max_size=12),
    st.sampled_from(EXTENSIONS),
    mostly(b"%x", b"%X", b"%04x", b" %x", b"%x "),
).map(lambda c: (c[2] % len(c[0])) + c[1] + b"\r\n" + c[0] + b"\r\n")
last_chunks = st.tuples(
    mostly(b"0", b"000", b"0;e=1"),
    EOL,
    st.lists(
        st.sampled_from([b"T: v", b"T:", b" folded", b"T : v", b"T: \x00"]).map(
            lambda line: line + b"\r\n"
        ),
        max_size=3,
    ).map(b"".join),
    EOL,
).map(b"".join)
chunked_bodies = st.tuples(st.lists(chunks, max_size=4).map(b"".join), last_chunks).map(b"".join)


@needs_cython
@settings(max_examples=1500, deadline=None)
@given(
    body=chunked_bodies,
    data=st.data(),
    splits=st.lists(st.integers(0, 100), max_size=4),
    max_trailer=mostly(16384, 8),
)
def test_twins_agree_on_chunked_bodies(
    body: bytes, data: st.DataObject, splits: list[int], max_trailer: int
) -> None:
    body = mangled(data, body + b"NEXT")
    results = []
    for module in (load("python"), load("cython")):
        scanner = module.ChunkedScanner(max_trailer)
        used = []
        try:
            start = 0
            for end in sorted(splits) + [len(body)]:
                end = max(start, min(end, len(body)))
                used.append(scanner.feed(body[:end], start))
                start = end
            results.append((used, scanner.done))
        except HttpError as exc:
            results.append((exc.status, exc.reason))
    assert results[0] == results[1]


@given(
    method=strings(TCHAR, 10),
    target=strings(bytes(range(0x21, 0x7F)), 20),
    length=st.integers(0, 10**6),
    close=st.booleans(),
)
def test_generated_valid_requests_parse_as_built(
    http: ModuleType, method: bytes, target: bytes, length: int, close: bool
) -> None:
    head = b"%s %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n" % (method, target, length)
    head += b"Connection: close\r\n\r\n" if close else b"\r\n"
    for end in range(len(head) - 1, len(head) - 5, -1):
        assert http.parse_request_head(head[:end], 16384) is None
    parsed = http.parse_request_head(head + b"x" * 3, 16384)
    assert (parsed.method, parsed.target, parsed.head_len) == (method, target, len(head))
    assert (parsed.body, parsed.content_length) == ((BODY_LENGTH, length) if length else (0, 0))
    assert parsed.keep_alive is not close
