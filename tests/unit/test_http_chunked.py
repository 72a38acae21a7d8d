"""The chunked body scanner (tcpvs.http.ChunkedScanner), both implementations side by side."""

from __future__ import annotations

from types import ModuleType

import pytest

import tcpvs.compiled
from tcpvs.http import load
from tcpvs.http.common import MAX_CHUNK_LINE, HttpError

BUILT = not tcpvs.compiled.WHY_PURE  # the compiled scanners run


VALID = [
    b"0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",
    b"a\r\n0123456789\r\n000\r\n\r\n",
    b"0000000000000003\r\nabc\r\n0\r\n\r\n",  # 16 hex digits is the most allowed
    b"3;name\r\nabc\r\n0;last\r\n\r\n",
    b'3;name=value;other="quoted; \\"string\\""\r\nabc\r\n0\r\n\r\n',
    b'3 ; a = b ;c="d"\t;e\r\nabc\r\n0\r\n\r\n',  # BWS around ";" and "="
    b'3;a="caf\xc3\xa9"\r\nabc\r\n0\r\n\r\n',
    b"1\r\n\r\r\n2\r\n\r\n\r\n0\r\n\r\n",  # CR and LF inside data are data
    b"0\r\nExpires: never\r\nX-Checksum:\tabc \r\n\r\n",
    b"0\r\nEmpty:\r\n\r\n",
]


@pytest.mark.parametrize("body", VALID)
def test_valid_body(http: ModuleType, body: bytes) -> None:
    scanner = http.ChunkedScanner()
    assert scanner.feed(body + b"GET / HTTP/1.1\r\n") == len(body)
    assert scanner.done is True
    assert scanner.feed(b"more") == 0


@pytest.mark.parametrize("body", VALID)
def test_valid_body_one_byte_at_a_time(http: ModuleType, body: bytes) -> None:
    scanner = http.ChunkedScanner()
    for i, byte in enumerate(body):
        assert not scanner.done
        assert scanner.feed(bytes([byte])) == 1, i
    assert scanner.done


@pytest.mark.parametrize("body", VALID)
def test_valid_body_split_anywhere(http: ModuleType, body: bytes) -> None:
    data = bytearray(b"xx" + body + b"NEXT")
    for cut in range(2, len(data)):
        scanner = http.ChunkedScanner()
        first = scanner.feed(memoryview(data)[:cut], 2)
        rest = scanner.feed(data, cut) if not scanner.done else 0
        assert first + rest == len(body)
        assert scanner.done


def test_start_offset_and_buffer_types(http: ModuleType) -> None:
    body = b"4\r\nwiki\r\n0\r\n\r\n"
    for data in (b"HEAD" + body, bytearray(b"HEAD" + body), memoryview(b"HEAD" + body)):
        scanner = http.ChunkedScanner()
        assert scanner.feed(data, 4) == len(body) and scanner.done
    with pytest.raises(ValueError):
        http.ChunkedScanner().feed(body, len(body) + 1)
    with pytest.raises(ValueError):
        http.ChunkedScanner().feed(body, -1)


def test_large_chunk_is_skipped_without_looking(http: ModuleType) -> None:
    scanner = http.ChunkedScanner()
    assert scanner.feed(b"100000\r\n") == 8
    payload = b"\r\n0\r\n\r\n" * (0x100000 // 7) + b"x" * (0x100000 % 7)
    assert scanner.feed(payload) == len(payload) and not scanner.done
    assert scanner.feed(b"\r\n0\r\n\r\n") == 7 and scanner.done


HOSTILE = [
    b"x\r\n",  # not hex
    b"\r\n",  # empty size
    b";a=b\r\n",  # extension without size
    b" 5\r\nhello\r\n",  # whitespace before the size
    b"\t5\r\n",
    b"5 \r\nhello\r\n",  # whitespace not followed by an extension
    b"0x5\r\n",
    b"-5\r\n",
    b"+5\r\n",
    b"00000000000000005\r\n",  # 17 hex digits
    b"5;\r\n",  # empty extension name
    b"5;=v\r\n",
    b"5;a=\r\n",  # empty extension value
    b'5;a="x\r\nhello\r\n',  # CR inside a quoted value
    b'5;a="x\r',
    b'5;a="x\nhello',  # LF inside a quoted value
    b'5;a="x\x01"\r\n',
    b"5;a b\r\n",
    b"5;a=b c\r\n",
    b"5;a=b \r\n",  # whitespace at the end of the line
    b"5;a\nhello",  # bare LF ends nothing
    b"5;a\rhello",  # bare CR
    b"5\nhello\r\n",
    b"5\rhello\r\n",
    b"5\r\nhelloX\r\n",  # data longer than announced
    b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhello\rX",
    b"5\r\nhello0\r\n\r\n",
    b"0\r\nX: y\r\n folded\r\n\r\n",  # obs-fold in the trailer section
    b"0\r\n\tX: y\r\n\r\n",
    b"0\r\nX : y\r\n\r\n",
    b"0\r\nno colon\r\n\r\n",
    b"0\r\nX: a\x00b\r\n\r\n",
    b"0\r\nX: y\n\r\n",
    b"0\r\nX: y\ry\r\n\r\n",
    b"0\r\n\n",  # bare LF to end the body
    b"0\r\n\rX",
    b"0\r\n: v\r\n\r\n",
]


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_body(http: ModuleType, data: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        http.ChunkedScanner().feed(data)
    assert caught.value.status == 400


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_body_one_byte_at_a_time(http: ModuleType, data: bytes) -> None:
    scanner = http.ChunkedScanner()
    with pytest.raises(HttpError) as caught:
        for byte in data:
            scanner.feed(bytes([byte]))
    assert caught.value.status == 400


@pytest.mark.parametrize("data", HOSTILE)
def test_both_refuse_alike(data: bytes) -> None:
    if not BUILT:
        pytest.skip("the scanners are not compiled")
    reasons = []
    for name in ("python", "cython"):
        with pytest.raises(HttpError) as caught:
            load(name).ChunkedScanner().feed(data)
        reasons.append(caught.value.reason)
    assert reasons[0] == reasons[1]


def test_trailer_limit(http: ModuleType) -> None:
    trailer = b"X-A: 12345\r\n\r\n"  # 14 bytes after the last-chunk line
    ok = http.ChunkedScanner(max_trailer=len(trailer))
    assert ok.feed(b"0\r\n" + trailer) == 3 + len(trailer) and ok.done
    with pytest.raises(HttpError) as caught:
        http.ChunkedScanner(max_trailer=len(trailer) - 1).feed(b"0\r\n" + trailer)
    assert caught.value.status == 400


def test_chunk_size_line_limit(http: ModuleType) -> None:
    line = b"5;x=" + b"a" * (MAX_CHUNK_LINE - 6) + b"\r\n"  # exactly MAX_CHUNK_LINE bytes
    assert http.ChunkedScanner().feed(line + b"hello\r\n0\r\n\r\n") == len(line) + 12
    with pytest.raises(HttpError):
        http.ChunkedScanner().feed(b"5;x=" + b"a" * MAX_CHUNK_LINE)
    scanner = http.ChunkedScanner()
    for _ in range(3):  # the limit is per line, not per body
        assert scanner.feed(line + b"hello\r\n") == len(line) + 7
