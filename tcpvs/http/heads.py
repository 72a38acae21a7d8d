"""HTTP/1.x message heads: find where a head ends, validate it strictly (RFC 9110/9112) and record
what body framing and routing need.

One source for both builds. Cython compiles it typed by heads.pxd: `p` is then a pointer to the
buffer's bytes and every loop below runs in C, with no Python object per header line. The
pure-Python build runs the same code on the bytes object itself (`p[i]` is an int either way).
"""

from __future__ import annotations

from tcpvs.http.common import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    BODY_UNTIL_CLOSE,
    C_FIELD,
    C_HOST,
    C_TARGET,
    C_TCHAR,
    CLASSES,
    CODINGS,
    MAX_CONTENT_LENGTH,
    HttpError,
)

CLS = CLASSES  # byte -> its class flags (common.py)
TCHAR, FIELD, TARGET, HOST = C_TCHAR, C_FIELD, C_TARGET, C_HOST  # (compiled: C constants)
MAX_LENGTH = MAX_CONTENT_LENGTH
_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))
LOWER = _LOWER  # (compiled: a pointer into the bytes object above, which keeps it alive)
# Methods common enough to share one bytes object instead of making one per request.
M_GET, M_POST, M_HEAD, M_PUT = b"GET", b"POST", b"HEAD", b"PUT"


class RequestHead:
    """A request head: what routing and framing need; the bytes themselves stay in `raw`.

    method, target (bytes); version (10 or 11); head_len (bytes of the head in the buffer,
    empty lines before it included); body (BODY_NONE, BODY_LENGTH or BODY_CHUNKED);
    content_length; keep_alive; upgrade (the Upgrade value when Connection names "upgrade",
    HTTP/1.1 only, else None); expect_continue; raw (the head's bytes).
    """

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
    method: bytes
    target: bytes
    version: int
    head_len: int
    body: int
    content_length: int
    keep_alive: bool
    upgrade: bytes | None
    expect_continue: bool
    raw: bytes

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
    """A response head: status and body framing; the bytes themselves stay in `raw`.

    status, version, head_len, body, content_length, keep_alive, raw (as RequestHead's).
    """

    __slots__ = ("status", "version", "head_len", "body", "content_length", "keep_alive", "raw")
    status: int
    version: int
    head_len: int
    body: int
    content_length: int
    keep_alive: bool
    raw: bytes

    def header(self, name: bytes) -> bytes | None:
        """First value of field `name` (any case), without surrounding whitespace."""
        return find_header(self.raw, name)

    def __repr__(self) -> str:
        return (
            f"ResponseHead(status={self.status}, version={self.version}, body={self.body}, "
            f"content_length={self.content_length}, keep_alive={self.keep_alive}, "
            f"head_len={self.head_len})"
        )


# -- byte helpers: p is the buffer (compiled: a pointer to it), i..n the part looked at ---------


def _is_ws(c: int) -> bool:
    return c == 32 or c == 9


def _span(p: bytes, i: int, n: int, flag: int) -> int:
    """Index of the first byte in p[i:n] not in class `flag` (n if none)."""
    while i < n and CLS[p[i]] & flag:
        i += 1
    return i


def _digits(p: bytes, i: int, n: int) -> int:
    while i < n and 48 <= p[i] <= 57:
        i += 1
    return i


def _item_end(p: bytes, i: int, b: int) -> int:
    """The end of the list element starting at i in p[:b] (RFC 9110 5.6.1): its comma, or b."""
    while i < b and p[i] != 44:
        i += 1
    return i


def _skip_ws(p: bytes, i: int, end: int) -> int:
    while i < end and _is_ws(p[i]):
        i += 1
    return i


def _strip_end(p: bytes, start: int, end: int) -> int:
    while end > start and _is_ws(p[end - 1]):
        end -= 1
    return end


def _ieq(p: bytes, at: int, lower: bytes, n: int) -> bool:
    """p[at:at+n] equals the lower-case ASCII `lower`, ignoring case."""
    for k in range(n):
        if LOWER[p[at + k]] != lower[k]:
            return False
    return True


def _eq(p: bytes, at: int, text: bytes, n: int) -> bool:
    for k in range(n):
        if p[at + k] != text[k]:
            return False
    return True


def _find_crlf(p: bytes, i: int, n: int) -> int:
    """Index of the first CRLF in p[i:n], or -1."""
    n -= 1
    while i < n:
        if p[i] == 13 and p[i + 1] == 10:
            return i
        i += 1
    return -1


def _find_end(p: bytes, start: int, limit: int) -> int:
    """Index of the first CRLFCRLF lying wholly in p[start:limit], or -1.

    A byte that is neither CR nor LF rules out the four windows it would be part of, so most
    of a head is passed over four bytes at a time (Horspool's idea)."""
    i = start
    while i + 3 < limit:
        c = p[i + 3]
        if c != 10 and c != 13:
            i += 4
        elif c == 10 and p[i + 2] == 13 and p[i + 1] == 10 and p[i] == 13:
            return i
        else:
            i += 1
    return -1


def _check_bare(p: bytes, start: int, n: int, status: int) -> None:
    for i in range(start, n):
        c = p[i]
        if (c == 10 and (i == 0 or p[i - 1] != 13)) or (c == 13 and i + 1 < n and p[i + 1] != 10):
            raise HttpError(status, "bare CR or LF")


# -- field lines ------------------------------------------------------------------------------


class _Scan:
    """What the start line and the field lines of one head say about framing and routing."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Ready for the next head (one object serves every head: parsing never re-enters)."""
        self.version = 0  # 10 or 11
        self.target_end = 0  # a request's: the space after its target
        self.status = 0  # a response's
        self.body = 0  # the framing, once framing() ran
        self.length = 0
        self.content_length = -1  # -1: none
        self.codings = 0  # transfer codings seen, chunked included
        self.chunked = False
        self.chunked_last = False
        self.conn_close = False
        self.conn_keep_alive = False
        self.conn_upgrade = False
        self.upgrade_start = -1  # -1: no Upgrade field
        self.upgrade_end = 0
        self.expect_continue = False
        self.hosts = 0
        self.err_status = 0  # the first framing error, raised once every line passed syntax
        self.err_reason = ""

    def request_line(self, p: bytes, s: int, le: int) -> None:
        """Validate the request line p[s:le]: its version, and where its target ends."""
        i = _span(p, s, le, TCHAR)
        if i == s or i == le or p[i] != 32:
            raise HttpError(400, "invalid method")
        j = _span(p, i + 1, le, TARGET)
        if j == i + 1 or (j < le and p[j] != 32):
            raise HttpError(400, "invalid request target")
        if j == le:
            raise HttpError(400, "missing HTTP version")
        self.target_end = j
        j += 1
        if le - j == 8 and _eq(p, j, b"HTTP/1.", 7) and (p[j + 7] == 48 or p[j + 7] == 49):
            self.version = 10 + p[j + 7] - 48
            return
        # HTTP/DIGIT+[.DIGIT+] is a version we do not speak; anything else is no version at all.
        if le - j > 5 and _eq(p, j, b"HTTP/", 5):
            k = _digits(p, j + 5, le)
            if j + 5 < k < le and p[k] == 46:
                i = _digits(p, k + 1, le)
                k = i if i > k + 1 else -1
            if k == le:
                raise HttpError(505, "HTTP version not supported")
        raise HttpError(400, "invalid HTTP version")

    def status_line(self, p: bytes, le: int) -> None:
        """Validate the status line p[:le]: its status and version."""
        if (
            le < 12
            or not _eq(p, 0, b"HTTP/1.", 7)
            or (p[7] != 48 and p[7] != 49)
            or p[8] != 32
            or not (49 <= p[9] <= 53 and 48 <= p[10] <= 57 and 48 <= p[11] <= 57)
            or (le > 12 and (p[12] != 32 or _span(p, 13, le, FIELD) != le))
        ):
            raise HttpError(502, "invalid status line")
        self.status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + p[11] - 48
        self.version = 10 + p[7] - 48

    def fail(self, status: int, reason: str) -> None:
        if not self.err_status:
            self.err_status, self.err_reason = status, reason

    def fields(self, p: bytes, i: int, stop: int, request: bool) -> None:
        """Validate the field lines p[i:stop] (each ends in CRLF; p[stop:stop+2] is the empty
        line) and note what framing and routing need."""
        while i < stop:
            if _is_ws(p[i]):
                raise HttpError(400, "obs-fold or whitespace before a field name")
            ns = i
            while CLS[p[i]] & TCHAR:
                i += 1
            c = p[i]
            if c != 58:
                if c == 13 and p[i + 1] == 10:
                    raise HttpError(400, "field line without colon")
                if _is_ws(c):
                    raise HttpError(400, "whitespace between field name and colon")
                raise HttpError(400, "invalid character in field name")
            if i == ns:
                raise HttpError(400, "empty field name")
            nlen = i - ns
            i += 1
            while _is_ws(p[i]):
                i += 1
            vs = i
            while CLS[p[i]] & FIELD:
                i += 1
            if p[i] != 13 or p[i + 1] != 10:
                raise HttpError(400, "invalid character in field value")
            ve = _strip_end(p, vs, i)
            i += 2
            if self.err_status:
                continue
            if nlen == 4:
                if request and _ieq(p, ns, b"host", 4):
                    # Routing and hhttp read Host, so it must be one clean value.
                    self.hosts += 1
                    if _span(p, vs, ve, HOST) != ve:
                        self.fail(400, "invalid Host")
            elif nlen == 6:
                if _ieq(p, ns, b"expect", 6) and ve - vs == 12 and _ieq(p, vs, b"100-continue", 12):
                    self.expect_continue = True
            elif nlen == 7:
                if self.upgrade_start < 0 and _ieq(p, ns, b"upgrade", 7):
                    self.upgrade_start, self.upgrade_end = vs, ve
            elif nlen == 10:
                if _ieq(p, ns, b"connection", 10):
                    self._connection(p, vs, ve)
            elif nlen == 14:
                if _ieq(p, ns, b"content-length", 14):
                    self._content_length(p, vs, ve)
            elif nlen == 17:
                if _ieq(p, ns, b"transfer-encoding", 17):
                    self._transfer_encoding(p, vs, ve)
        if self.err_status:
            raise HttpError(self.err_status, self.err_reason)

    def _content_length(self, p: bytes, a: int, b: int) -> None:
        # A list of identical values ("5, 5") is one length (RFC 9110 8.6); anything else fails.
        i = a
        while True:
            k = _item_end(p, i, b)
            i = _skip_ws(p, i, k)
            end = _strip_end(p, i, k)
            if i == end:
                self.fail(400, "invalid Content-Length")
                return
            value = 0
            while i < end:
                d = p[i] - 48
                if not 0 <= d <= 9 or value > (MAX_LENGTH - d) // 10:
                    self.fail(400, "invalid Content-Length")
                    return
                value = value * 10 + d
                i += 1
            if self.content_length >= 0 and self.content_length != value:
                self.fail(400, "conflicting Content-Length")
                return
            self.content_length = value
            if k == b:
                return
            i = k + 1

    def _transfer_encoding(self, p: bytes, a: int, b: int) -> None:
        i = a
        while True:
            k = _item_end(p, i, b)
            i = _skip_ws(p, i, k)
            end = _strip_end(p, i, k)
            n = end - i
            if n == 0:
                self.fail(400, "invalid Transfer-Encoding")
                return
            chunked = n == 7 and _ieq(p, i, b"chunked", 7)
            if not chunked:
                for coding in CODINGS:
                    if len(coding) == n and _ieq(p, i, coding, n):
                        break
                else:
                    self.fail(501, "unsupported transfer coding")
                    return
            elif self.chunked:
                self.fail(400, "chunked applied more than once")
                return
            self.codings += 1
            self.chunked_last = chunked
            self.chunked = self.chunked or chunked
            if k == b:
                return
            i = k + 1

    def _connection(self, p: bytes, a: int, b: int) -> None:
        i = a
        while True:
            k = _item_end(p, i, b)
            i = _skip_ws(p, i, k)
            n = _strip_end(p, i, k) - i
            if n == 5 and _ieq(p, i, b"close", 5):
                self.conn_close = True
            elif n == 10 and _ieq(p, i, b"keep-alive", 10):
                self.conn_keep_alive = True
            elif n == 7 and _ieq(p, i, b"upgrade", 7):
                self.conn_upgrade = True
            if k == b:
                return
            i = k + 1

    def framing(self) -> None:
        """body and length as the fields say (RFC 9112 6.3); UNTIL_CLOSE when they say
        nothing."""
        self.length = 0
        if self.codings:
            if self.version == 10:
                raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 message")
            if self.content_length >= 0:
                raise HttpError(400, "Content-Length with Transfer-Encoding")
            self.body = BODY_CHUNKED if self.chunked_last else BODY_UNTIL_CLOSE
        elif self.content_length > 0:
            self.body, self.length = BODY_LENGTH, self.content_length
        else:
            self.body = BODY_NONE if self.content_length == 0 else BODY_UNTIL_CLOSE

    def keep_alive(self) -> bool:
        return not self.conn_close and (self.version == 11 or self.conn_keep_alive)


_SCAN = _Scan()


def find_header(raw: bytes, name: bytes) -> bytes | None:
    """First value of field `name` (any case) in the head `raw`, without surrounding whitespace."""
    p = raw
    q = name
    n, m = len(raw), len(name)
    if m == 0 or _span(q, 0, m, TCHAR) != m:
        return None
    i = _find_crlf(p, 0, n) + 2
    while i + m < n:
        if p[i + m] == 58:
            k = 0
            while k < m and LOWER[p[i + k]] == LOWER[q[k]]:
                k += 1
            if k == m:
                vs = i + m + 1
                while _is_ws(p[vs]):
                    vs += 1
                return p[vs : _strip_end(p, vs, _find_crlf(p, vs, n))]
        while i < n and p[i] != 10:  # the next line
            i += 1
        i += 1
    return None


# -- heads ------------------------------------------------------------------------------------


def _method(p: bytes, s: int, n: int) -> bytes:
    if n == 3 and _eq(p, s, b"GET", 3):
        return M_GET
    if n == 4 and _eq(p, s, b"POST", 4):
        return M_POST
    if n == 4 and _eq(p, s, b"HEAD", 4):
        return M_HEAD
    if n == 3 and _eq(p, s, b"PUT", 3):
        return M_PUT
    return p[s : s + n]


def parse_request_head(buf: bytes | bytearray, max_size: int) -> RequestHead | None:
    """The request head at the start of `buf`, None while incomplete; HttpError if refused.

    Empty lines before the request line are skipped (counted in head_len, not in raw).
    Lines must end in CRLF: a bare LF or CR is refused, not tolerated.
    """
    if type(buf) is not bytes:
        buf = bytes(buf)
    p = buf
    n = len(buf)
    s = 0
    while s + 1 < n and p[s] == 13 and p[s + 1] == 10:
        s += 2
    e = _find_end(p, s, n if n < max_size else max_size)
    if e < 0:
        if n >= max_size:
            raise HttpError(431, "request head too large")
        _check_bare(p, s, n, 400)
        le = _find_crlf(p, s, n)
        if le >= 0:
            _Scan().request_line(p, s, le)
        elif n - s != 1 or p[s] != 13:  # a lone CR may start an empty line
            i = _span(p, s, n, TCHAR)
            if i < n and p[i] != 32:
                raise HttpError(400, "invalid method")
        return None
    le = _find_crlf(p, s, n)
    scan = _SCAN
    scan.reset()
    scan.request_line(p, s, le)
    scan.fields(p, le + 2, e + 2, True)
    version = scan.version
    if version == 11 and scan.hosts == 0:
        raise HttpError(400, "missing Host")
    if scan.hosts > 1:
        raise HttpError(400, "more than one Host")
    scan.framing()
    body = scan.body
    if body == BODY_UNTIL_CLOSE:
        if scan.codings:
            raise HttpError(400, "chunked is not the final transfer coding")
        body = BODY_NONE
    head = RequestHead.__new__(RequestHead)
    i = _span(p, s, le, TCHAR)
    head.method = _method(p, s, i - s)
    head.target = p[i + 1 : scan.target_end]
    head.version = version
    head.head_len = e + 4
    head.body = body
    head.content_length = scan.length
    head.keep_alive = scan.keep_alive()
    if scan.conn_upgrade and scan.upgrade_start >= 0 and version == 11:
        head.upgrade = p[scan.upgrade_start : scan.upgrade_end]
    else:
        head.upgrade = None
    head.expect_continue = scan.expect_continue and version == 11
    head.raw = buf if s == 0 and e + 4 == n else p[s : e + 4]
    return head


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
    if type(buf) is not bytes:
        buf = bytes(buf)
    p = buf
    n = len(buf)
    e = _find_end(p, 0, n if n < max_size else max_size)
    if e < 0:
        if n >= max_size:
            raise HttpError(502, "response head too large")
        _check_bare(p, 0, n, 502)
        le = _find_crlf(p, 0, n)
        if le >= 0:
            _Scan().status_line(p, le)
        elif not _eq(p, 0, b"HTTP/", n if n < 5 else 5):
            raise HttpError(502, "invalid status line")
        return None
    le = _find_crlf(p, 0, n)
    scan = _SCAN
    scan.reset()
    scan.status_line(p, le)
    scan.fields(p, le + 2, e + 2, False)
    scan.framing()
    status, body, length = scan.status, scan.body, scan.length
    tunnel = status == 101 or (200 <= status < 300 and method == b"CONNECT")
    if tunnel or status < 200 or status == 204 or status == 304 or method == b"HEAD":
        body, length = BODY_NONE, 0
    head = ResponseHead.__new__(ResponseHead)
    head.status = status
    head.version = scan.version
    head.head_len = e + 4
    head.body = body
    head.content_length = length
    head.keep_alive = scan.keep_alive() and body != BODY_UNTIL_CLOSE and not tunnel
    head.raw = buf if e + 4 == n else p[: e + 4]
    return head
