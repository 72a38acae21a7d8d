"""Pure-Python HTTP/1.x message heads: find where a head ends, validate it strictly and record
what body framing and routing need. Twin of tcpvs/_fast/httpscan.pyx (same results, same errors).
"""

from __future__ import annotations

import re
from functools import lru_cache

from tcpvs.http.common import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    BODY_UNTIL_CLOSE,
    C_HOST,
    C_TARGET,
    C_TCHAR,
    CLASSES,
    CODINGS,
    FIELD_CHAR,
    MAX_CONTENT_LENGTH,
    TARGET_CHAR,
    TCHAR,
    HttpError,
)


def _charset(members: bytes) -> bytes:
    return b"[" + b"".join(re.escape(bytes([c])) for c in members) + b"]"


_TOKEN = _charset(TCHAR) + b"+"
_FIELD = _charset(FIELD_CHAR) + b"*"
_TOKEN_RE = re.compile(_TOKEN)
_REQUEST_LINE = re.compile(rb"(%s) (%s+) HTTP/1\.([01])" % (_TOKEN, _charset(TARGET_CHAR)))
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: %s)?" % _FIELD)
_VERSION = re.compile(rb"HTTP/[0-9]+(?:\.[0-9]+)?")
_FIELD_LINE = re.compile(rb"%s:%s" % (_TOKEN, _FIELD))
_FIELD_LINES = re.compile(rb"(?:%s\r\n)*\r\n" % _FIELD_LINE.pattern)
# Only the fields framing and routing need; the lines were validated before this runs.
_FRAMING = re.compile(
    rb"(?im)^(content-length|transfer-encoding|connection|upgrade|expect|host):([^\r]*)"
)
_BARE_CR_LF = re.compile(rb"\r[^\n]|(?<!\r)\n")
_DIGITS = re.compile(rb"[0-9]+")
_OWS = b" \t"


class RequestHead:
    """A request head: what routing and framing need; the bytes themselves stay in `raw`."""

    __slots__ = (
        "method",
        "target",
        "version",
        "head_len",
        "body",
        "content_length",
        "keep_alive",
        "upgrade",
        "expect_continue",
        "raw",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: int,
        head_len: int,
        body: int,
        content_length: int,
        keep_alive: bool,
        upgrade: bytes | None,
        expect_continue: bool,
        raw: bytes,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.head_len = head_len  # bytes of the buffer it used, skipped empty lines included
        self.body = body
        self.content_length = content_length  # 0 unless body == BODY_LENGTH
        self.keep_alive = keep_alive
        self.upgrade = upgrade  # the Upgrade value when Connection names "upgrade"
        self.expect_continue = expect_continue
        self.raw = raw

    def header(self, name: bytes) -> bytes | None:
        """First value of field `name` (any case), without surrounding whitespace."""
        return find_header(self.raw, name)

    def __repr__(self) -> str:
        return (
            f"RequestHead(method={self.method!r}, target={self.target!r}, "
            f"version={self.version}, body={self.body}, content_length={self.content_length}, "
            f"keep_alive={self.keep_alive}, head_len={self.head_len})"
        )


class ResponseHead:
    """A response head: status and body framing; the bytes themselves stay in `raw`."""

    __slots__ = ("status", "version", "head_len", "body", "content_length", "keep_alive", "raw")

    def __init__(
        self,
        status: int,
        version: int,
        head_len: int,
        body: int,
        content_length: int,
        keep_alive: bool,
        raw: bytes,
    ) -> None:
        self.status = status
        self.version = version
        self.head_len = head_len
        self.body = body
        self.content_length = content_length  # 0 unless body == BODY_LENGTH
        self.keep_alive = keep_alive  # the server connection can carry another request after
        self.raw = raw

    def header(self, name: bytes) -> bytes | None:
        """First value of field `name` (any case), without surrounding whitespace."""
        return find_header(self.raw, name)

    def __repr__(self) -> str:
        return (
            f"ResponseHead(status={self.status}, version={self.version}, body={self.body}, "
            f"content_length={self.content_length}, keep_alive={self.keep_alive}, "
            f"head_len={self.head_len})"
        )


@lru_cache(maxsize=64)
def _header_re(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"(?im)^%s:[ \t]*([^\r]*)" % re.escape(name))


def find_header(raw: bytes, name: bytes) -> bytes | None:
    """First value of field `name` in a validated head (its first line is skipped)."""
    if not _TOKEN_RE.fullmatch(name):
        return None
    found = _header_re(name).search(raw, raw.find(b"\r\n") + 2)
    return None if found is None else found.group(1).rstrip(_OWS)


def parse_request_head(buf: bytes | bytearray, max_size: int) -> RequestHead | None:
    """The request head at the start of `buf`, None while incomplete; HttpError if refused.

    Empty lines before the request line are skipped (counted in head_len, not in raw).
    Lines must end in CRLF: a bare LF or CR is refused, not tolerated.
    """
    start = 0
    while buf.startswith(b"\r\n", start):
        start += 2
    end = buf.find(b"\r\n\r\n", start, max_size)
    if end < 0:
        if len(buf) >= max_size:
            raise HttpError(431, "request head too large")
        _check_partial_request(buf, start)
        return None
    head_len = end + 4
    raw = bytes(buf[start:head_len])
    line_end = raw.find(b"\r\n")
    method, target, version = _request_line(raw, line_end)
    fields = _Fields(raw, line_end + 2, True)
    if version == 11 and fields.hosts == 0:
        raise HttpError(400, "missing Host")
    if fields.hosts > 1:
        raise HttpError(400, "more than one Host")
    body, length = fields.framing(version)
    if body == BODY_UNTIL_CLOSE:
        if fields.codings:
            raise HttpError(400, "chunked is not the final transfer coding")
        body = BODY_NONE
    return RequestHead(
        method,
        target,
        version,
        head_len,
        body,
        length,
        _keep_alive(version, fields),
        fields.upgrade if fields.conn_upgrade and version == 11 else None,
        fields.expect_continue and version == 11,
        raw,
    )


def parse_response_head(
    buf: bytes | bytearray, max_size: int, method: bytes
) -> ResponseHead | None:
    """The response head at the start of `buf` (answering `method`), None while incomplete.

    Every malformed or ambiguous response is HttpError(502).
    """
    try:
        return _response_head(buf, max_size, method)
    except HttpError as exc:
        if exc.status == 502:
            raise
        raise HttpError(502, exc.reason) from None


def _response_head(buf: bytes | bytearray, max_size: int, method: bytes) -> ResponseHead | None:
    end = buf.find(b"\r\n\r\n", 0, max_size)
    if end < 0:
        if len(buf) >= max_size:
            raise HttpError(502, "response head too large")
        _check_partial_response(buf)
        return None
    head_len = end + 4
    raw = bytes(buf[:head_len])
    line_end = raw.find(b"\r\n")
    status, version = _status_line(raw, line_end)
    fields = _Fields(raw, line_end + 2, False)
    body, length = fields.framing(version)
    tunnel = status == 101 or (method == b"CONNECT" and 200 <= status < 300)
    if tunnel or method == b"HEAD" or status < 200 or status == 204 or status == 304:
        body, length = BODY_NONE, 0
    keep_alive = _keep_alive(version, fields) and body != BODY_UNTIL_CLOSE and not tunnel
    return ResponseHead(status, version, head_len, body, length, keep_alive, raw)


def _keep_alive(version: int, fields: _Fields) -> bool:
    return not fields.conn_close and (version == 11 or fields.conn_keep_alive)


def _span(data: bytes | bytearray, i: int, flag: int) -> int:
    """Index of the first byte from `i` on that is not in class `flag`."""
    while i < len(data) and CLASSES[data[i]] & flag:
        i += 1
    return i


def _check_partial_request(buf: bytes | bytearray, start: int) -> None:
    """Refuse an incomplete head early when what has arrived is already wrong."""
    if _BARE_CR_LF.search(buf, start):
        raise HttpError(400, "bare CR or LF")
    line_end = buf.find(b"\r\n", start)
    if line_end >= 0:
        _request_line(bytes(buf[start : line_end + 2]), line_end - start)
    elif len(buf) - start != 1 or buf[start] != 13:  # a lone CR may start an empty line
        i = _span(buf, start, C_TCHAR)
        if i < len(buf) and buf[i] != 32:
            raise HttpError(400, "invalid method")


def _check_partial_response(buf: bytes | bytearray) -> None:
    if _BARE_CR_LF.search(buf):
        raise HttpError(502, "bare CR or LF")
    line_end = buf.find(b"\r\n")
    if line_end >= 0:
        _status_line(bytes(buf[: line_end + 2]), line_end)
    elif not b"HTTP/".startswith(bytes(buf[:5])):
        raise HttpError(502, "invalid status line")


def _request_line(raw: bytes, line_end: int) -> tuple[bytes, bytes, int]:
    """Method, target and version (10|11) of the request line raw[:line_end]."""
    found = _REQUEST_LINE.fullmatch(raw, 0, line_end)
    if found is not None:
        return found.group(1), found.group(2), 10 + int(found.group(3))
    line = raw[:line_end]
    i = _span(line, 0, C_TCHAR)
    if i == 0 or i == len(line) or line[i] != 32:
        raise HttpError(400, "invalid method")
    j = _span(line, i + 1, C_TARGET)
    if j == i + 1 or (j < len(line) and line[j] != 32):
        raise HttpError(400, "invalid request target")
    if j == len(line):
        raise HttpError(400, "missing HTTP version")
    if _VERSION.fullmatch(line, j + 1):
        raise HttpError(505, "HTTP version not supported")
    raise HttpError(400, "invalid HTTP version")


def _status_line(raw: bytes, line_end: int) -> tuple[int, int]:
    """Status and version (10|11) of the status line raw[:line_end]."""
    found = _STATUS_LINE.fullmatch(raw, 0, line_end)
    if found is None:
        raise HttpError(502, "invalid status line")
    return int(found.group(2)), 10 + int(found.group(1))


def _field_line_error(line: bytes) -> HttpError:
    """Why `line` (one field line, without its CRLF) is not a valid field line."""
    if line[:1] in (b" ", b"\t"):
        return HttpError(400, "obs-fold or whitespace before a field name")
    i = _span(line, 0, C_TCHAR)
    if i == len(line):
        return HttpError(400, "field line without colon")
    if line[i] == 58 and i == 0:
        return HttpError(400, "empty field name")
    if line[i] in (32, 9):
        return HttpError(400, "whitespace between field name and colon")
    if line[i] != 58:
        return HttpError(400, "invalid character in field name")
    return HttpError(400, "invalid character in field value")


class _Fields:
    """What framing and routing need from the field lines raw[start:] (validated here)."""

    __slots__ = (
        "content_length",
        "codings",
        "chunked",
        "chunked_last",
        "conn_close",
        "conn_keep_alive",
        "conn_upgrade",
        "upgrade",
        "expect_continue",
        "hosts",
    )

    def __init__(self, raw: bytes, start: int, request: bool) -> None:
        if not _FIELD_LINES.fullmatch(raw, start):
            lines = raw[start:-4].split(b"\r\n")
            raise next(_field_line_error(line) for line in lines if not _FIELD_LINE.fullmatch(line))
        self.content_length = -1
        self.codings = 0  # transfer codings seen, chunked included
        self.chunked = self.chunked_last = False
        self.conn_close = self.conn_keep_alive = self.conn_upgrade = False
        self.upgrade: bytes | None = None
        self.expect_continue = False
        self.hosts = 0
        for found in _FRAMING.finditer(raw, start):
            name = found.group(1).lower()
            value = found.group(2).strip(_OWS)
            if name == b"content-length":
                self._content_length(value)
            elif name == b"transfer-encoding":
                self._transfer_encoding(value)
            elif name == b"connection":
                for token in value.split(b","):
                    token = token.strip(_OWS).lower()
                    self.conn_close |= token == b"close"
                    self.conn_keep_alive |= token == b"keep-alive"
                    self.conn_upgrade |= token == b"upgrade"
            elif name == b"upgrade":
                if self.upgrade is None:
                    self.upgrade = value
            elif name == b"expect":
                self.expect_continue |= value.lower() == b"100-continue"
            elif request:  # Host: routing and hhttp read it, so it must be one clean value
                self.hosts += 1
                if _span(value, 0, C_HOST) != len(value):
                    raise HttpError(400, "invalid Host")

    def _content_length(self, value: bytes) -> None:
        # A list of identical values ("5, 5") is one length (RFC 9110 8.6); anything else fails.
        for item in value.split(b","):
            item = item.strip(_OWS)
            if not _DIGITS.fullmatch(item) or len(item.lstrip(b"0")) > 19:
                raise HttpError(400, "invalid Content-Length")
            length = int(item)
            if length > MAX_CONTENT_LENGTH:
                raise HttpError(400, "invalid Content-Length")
            if self.content_length >= 0 and length != self.content_length:
                raise HttpError(400, "conflicting Content-Length")
            self.content_length = length

    def _transfer_encoding(self, value: bytes) -> None:
        for item in value.split(b","):
            coding = item.strip(_OWS).lower()
            if not coding:
                raise HttpError(400, "invalid Transfer-Encoding")
            if coding not in CODINGS:
                raise HttpError(501, "unsupported transfer coding")
            if coding == b"chunked" and self.chunked:
                raise HttpError(400, "chunked applied more than once")
            self.codings += 1
            self.chunked_last = coding == b"chunked"
            self.chunked |= self.chunked_last

    def framing(self, version: int) -> tuple[int, int]:
        """(body, content_length) as the fields say (RFC 9112 6.3); UNTIL_CLOSE when silent."""
        if self.codings:
            if version == 10:
                raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 message")
            if self.content_length >= 0:
                raise HttpError(400, "Content-Length with Transfer-Encoding")
            return (BODY_CHUNKED if self.chunked_last else BODY_UNTIL_CLOSE), 0
        if self.content_length > 0:
            return BODY_LENGTH, self.content_length
        return (BODY_NONE if self.content_length == 0 else BODY_UNTIL_CLOSE), 0
