# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython twin of tcpvs.http.heads and tcpvs.http.chunked: the same API, results and errors,
scanning the raw bytes in C with no Python object per header line.

Byte classes, limits, codings and the chunked transition table come from the pure modules, so
the grammar is written once; the tests run both implementations side by side.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcmp, memset

from tcpvs.http import chunked as _chunked
from tcpvs.http import common as _common
from tcpvs.http.common import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, HttpError
from tcpvs.http.responses import error_response

cdef extern from "string.h":
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)

__all__ = [
    "BODY_CHUNKED",
    "BODY_LENGTH",
    "BODY_NONE",
    "BODY_UNTIL_CLOSE",
    "ChunkedScanner",
    "HttpError",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "parse_request_head",
    "parse_response_head",
]


cdef unsigned char CLS[256]
cdef unsigned char LOWER[256]
cdef unsigned char C_TCHAR = _common.C_TCHAR
cdef unsigned char C_FIELD = _common.C_FIELD
cdef unsigned char C_TARGET = _common.C_TARGET
cdef unsigned char C_HOST = _common.C_HOST
cdef uint64_t MAX_CONTENT_LENGTH = _common.MAX_CONTENT_LENGTH
cdef int MAX_CHUNK_SIZE_DIGITS = _common.MAX_CHUNK_SIZE_DIGITS
cdef Py_ssize_t MAX_CHUNK_LINE = _common.MAX_CHUNK_LINE
cdef int C_BODY_NONE = BODY_NONE
cdef int C_BODY_LENGTH = BODY_LENGTH
cdef int C_BODY_CHUNKED = BODY_CHUNKED
cdef int C_BODY_UNTIL_CLOSE = BODY_UNTIL_CLOSE
cdef tuple CODINGS = tuple(_common.CODINGS)

cdef int _i
for _i in range(256):
    CLS[_i] = _common.CLASSES[_i]
    LOWER[_i] = _i + 32 if 65 <= _i <= 90 else _i

# Chunked scanner states and transitions, copied from the pure twin.
cdef unsigned char TRANS[32][256]
cdef unsigned char S_SIZE = _chunked.SIZE
cdef unsigned char S_LINE_LF = _chunked.LINE_LF
cdef unsigned char S_DATA = _chunked.DATA
cdef unsigned char S_DATA_CR = _chunked.DATA_CR
cdef unsigned char S_TRAILER = _chunked.TRAILER
cdef unsigned char S_DONE = _chunked.DONE
cdef unsigned char S_REFUSE = _chunked.REFUSE
cdef dict CHUNK_REASONS = _chunked.REASONS
if len(_chunked.TRANSITIONS) > 32:
    raise ImportError("chunked transition table larger than the C array")
for _i, _row in enumerate(_chunked.TRANSITIONS):
    for _c in range(256):
        TRANS[_i][_c] = _row[_c]

# Methods common enough to share one bytes object instead of allocating one per request.
cdef bytes M_GET = b"GET"
cdef bytes M_POST = b"POST"
cdef bytes M_HEAD = b"HEAD"
cdef bytes M_PUT = b"PUT"


cdef inline cbytes _pointer(object buf, Py_ssize_t* n) noexcept:
    """Start and length of a bytes or bytearray (the caller checked the type)."""
    if isinstance(buf, bytes):
        n[0] = PyBytes_GET_SIZE(buf)
        return <cbytes>PyBytes_AS_STRING(buf)
    n[0] = PyByteArray_GET_SIZE(buf)
    return <cbytes>PyByteArray_AS_STRING(buf)


cdef inline bint _ieq(cbytes a, const char* lower, Py_ssize_t n) noexcept:
    """a[:n] equals the lower-case ASCII `lower`, ignoring case."""
    cdef Py_ssize_t k
    for k in range(n):
        if LOWER[a[k]] != <unsigned char>lower[k]:
            return False
    return True


cdef inline bint _is_ws(unsigned char c) noexcept:
    return c == 32 or c == 9


cdef inline Py_ssize_t _find_crlf(cbytes p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Index of the first CRLF in p[i:n], or -1."""
    cdef const void* found
    while i < n - 1:
        found = memchr(p + i, 13, n - 1 - i)
        if found == NULL:
            return -1
        i = <cbytes>found - p
        if p[i + 1] == 10:
            return i
        i += 1
    return -1


cdef inline Py_ssize_t _find_end(cbytes p, Py_ssize_t start, Py_ssize_t limit) noexcept:
    """Index of the first CRLFCRLF lying wholly in p[start:limit], or -1."""
    cdef const void* found
    if limit - start < 4:
        return -1
    found = memmem(p + start, limit - start, b"\r\n\r\n", 4)
    return -1 if found == NULL else <cbytes>found - p


cdef inline Py_ssize_t _span(cbytes p, Py_ssize_t i, Py_ssize_t n, unsigned char flag) noexcept:
    while i < n and CLS[p[i]] & flag:
        i += 1
    return i


cdef inline Py_ssize_t _digits(cbytes p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and 48 <= p[i] <= 57:
        i += 1
    return i


cdef inline Py_ssize_t _strip_end(cbytes p, Py_ssize_t start, Py_ssize_t end) noexcept:
    while end > start and _is_ws(p[end - 1]):
        end -= 1
    return end


cdef int _check_bare(cbytes p, Py_ssize_t start, Py_ssize_t n, int status) except -1:
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(start, n):
        c = p[i]
        if (c == 10 and (i == 0 or p[i - 1] != 13)) or (c == 13 and i + 1 < n and p[i + 1] != 10):
            raise HttpError(status, "bare CR or LF")
    return 0


# ---------------------------------------------------------------- start lines

cdef int _request_line(cbytes p, Py_ssize_t s, Py_ssize_t le, Py_ssize_t* target) except -1:
    """Validate the request line p[s:le]; its version (10|11), target[0] = the 2nd space."""
    cdef Py_ssize_t i = _span(p, s, le, C_TCHAR), j, k
    if i == s or i == le or p[i] != 32:
        raise HttpError(400, "invalid method")
    j = _span(p, i + 1, le, C_TARGET)
    if j == i + 1 or (j < le and p[j] != 32):
        raise HttpError(400, "invalid request target")
    if j == le:
        raise HttpError(400, "missing HTTP version")
    target[0] = j
    j += 1
    if le - j == 8 and memcmp(p + j, b"HTTP/1.", 7) == 0 and (p[j + 7] == 48 or p[j + 7] == 49):
        return 10 + p[j + 7] - 48
    # HTTP/DIGIT+[.DIGIT+] is a version we do not speak; anything else is no version at all.
    if le - j > 5 and memcmp(p + j, b"HTTP/", 5) == 0:
        k = _digits(p, j + 5, le)
        if k > j + 5 and k < le and p[k] == 46:
            i = _digits(p, k + 1, le)
            k = i if i > k + 1 else -1
        if k == le:
            raise HttpError(505, "HTTP version not supported")
    raise HttpError(400, "invalid HTTP version")


cdef int _status_line(cbytes p, Py_ssize_t le, int* version) except -1:
    """Validate the status line p[:le]; returns the status code."""
    if (
        le < 12
        or memcmp(p, b"HTTP/1.", 7) != 0
        or (p[7] != 48 and p[7] != 49)
        or p[8] != 32
        or not (49 <= p[9] <= 53 and 48 <= p[10] <= 57 and 48 <= p[11] <= 57)
        or (le > 12 and (p[12] != 32 or _span(p, 13, le, C_FIELD) != le))
    ):
        raise HttpError(502, "invalid status line")
    version[0] = 10 + p[7] - 48
    return (p[9] - 48) * 100 + (p[10] - 48) * 10 + p[11] - 48


# ---------------------------------------------------------------- field lines

cdef struct Fields:
    int64_t content_length  # -1: none
    int codings  # transfer codings seen, chunked included
    bint chunked
    bint chunked_last
    bint conn_close
    bint conn_keep_alive
    bint conn_upgrade
    Py_ssize_t upgrade_start  # -1: no Upgrade field
    Py_ssize_t upgrade_end
    bint expect_continue
    int hosts
    int err_status  # first framing error, raised once every line passed the syntax check
    const char* err_reason


cdef inline void _fail(Fields* f, int status, const char* reason) noexcept:
    f.err_status = status
    f.err_reason = reason


cdef void _content_length(cbytes p, Py_ssize_t a, Py_ssize_t b, Fields* f) noexcept:
    # A list of identical values ("5, 5") is one length (RFC 9110 8.6); anything else fails.
    cdef Py_ssize_t i = a, k, end
    cdef uint64_t value
    cdef unsigned char d
    while True:
        k = i
        while k < b and p[k] != 44:
            k += 1
        while i < k and _is_ws(p[i]):
            i += 1
        end = _strip_end(p, i, k)
        if i == end:
            _fail(f, 400, b"invalid Content-Length")
            return
        value = 0
        while i < end:
            d = p[i] - 48
            if d > 9 or value > (MAX_CONTENT_LENGTH - d) // 10:
                _fail(f, 400, b"invalid Content-Length")
                return
            value = value * 10 + d
            i += 1
        if f.content_length >= 0 and <uint64_t>f.content_length != value:
            _fail(f, 400, b"conflicting Content-Length")
            return
        f.content_length = <int64_t>value
        if k == b:
            return
        i = k + 1


cdef void _transfer_encoding(cbytes p, Py_ssize_t a, Py_ssize_t b, Fields* f):
    cdef Py_ssize_t i = a, k, end, n
    cdef bint chunked
    cdef bytes coding
    while True:
        k = i
        while k < b and p[k] != 44:
            k += 1
        while i < k and _is_ws(p[i]):
            i += 1
        end = _strip_end(p, i, k)
        n = end - i
        if n == 0:
            _fail(f, 400, b"invalid Transfer-Encoding")
            return
        chunked = n == 7 and _ieq(p + i, b"chunked", 7)
        if not chunked:
            for coding in CODINGS:
                if PyBytes_GET_SIZE(coding) == n and _ieq(p + i, PyBytes_AS_STRING(coding), n):
                    break
            else:
                _fail(f, 501, b"unsupported transfer coding")
                return
        elif f.chunked:
            _fail(f, 400, b"chunked applied more than once")
            return
        f.codings += 1
        f.chunked_last = chunked
        f.chunked |= chunked
        if k == b:
            return
        i = k + 1


cdef void _connection(cbytes p, Py_ssize_t a, Py_ssize_t b, Fields* f) noexcept:
    cdef Py_ssize_t i = a, k, end, n
    while True:
        k = i
        while k < b and p[k] != 44:
            k += 1
        while i < k and _is_ws(p[i]):
            i += 1
        end = _strip_end(p, i, k)
        n = end - i
        if n == 5 and _ieq(p + i, b"close", 5):
            f.conn_close = True
        elif n == 10 and _ieq(p + i, b"keep-alive", 10):
            f.conn_keep_alive = True
        elif n == 7 and _ieq(p + i, b"upgrade", 7):
            f.conn_upgrade = True
        if k == b:
            return
        i = k + 1


cdef int _scan_fields(cbytes p, Py_ssize_t i, Py_ssize_t stop, Fields* f, bint request) except -1:
    """Validate the field lines p[i:stop] (each ends in CRLF; p[stop:stop+2] is the empty
    line) and fill `f` with what framing and routing need."""
    cdef Py_ssize_t ns, nlen, vs, ve
    cdef unsigned char c
    memset(f, 0, sizeof(Fields))
    f.content_length = -1
    f.upgrade_start = -1
    while i < stop:
        if _is_ws(p[i]):
            raise HttpError(400, "obs-fold or whitespace before a field name")
        ns = i
        while CLS[p[i]] & C_TCHAR:
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
        while CLS[p[i]] & C_FIELD:
            i += 1
        if p[i] != 13 or p[i + 1] != 10:
            raise HttpError(400, "invalid character in field value")
        ve = _strip_end(p, vs, i)
        i += 2
        if f.err_status:
            continue
        if nlen == 4:
            if request and _ieq(p + ns, b"host", 4):
                # Routing and hhttp read Host, so it must be one clean value.
                f.hosts += 1
                if _span(p, vs, ve, C_HOST) != ve:
                    _fail(f, 400, b"invalid Host")
        elif nlen == 6:
            if _ieq(p + ns, b"expect", 6) and ve - vs == 12 and _ieq(p + vs, b"100-continue", 12):
                f.expect_continue = True
        elif nlen == 7:
            if f.upgrade_start < 0 and _ieq(p + ns, b"upgrade", 7):
                f.upgrade_start = vs
                f.upgrade_end = ve
        elif nlen == 10:
            if _ieq(p + ns, b"connection", 10):
                _connection(p, vs, ve, f)
        elif nlen == 14:
            if _ieq(p + ns, b"content-length", 14):
                _content_length(p, vs, ve, f)
        elif nlen == 17:
            if _ieq(p + ns, b"transfer-encoding", 17):
                _transfer_encoding(p, vs, ve, f)
    if f.err_status:
        raise HttpError(f.err_status, f.err_reason.decode("ascii"))
    return 0


cdef int _framing(Fields* f, int version, int64_t* length) except -1:
    """The body framing the fields say (RFC 9112 6.3); UNTIL_CLOSE when they say nothing."""
    length[0] = 0
    if f.codings:
        if version == 10:
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 message")
        if f.content_length >= 0:
            raise HttpError(400, "Content-Length with Transfer-Encoding")
        return C_BODY_CHUNKED if f.chunked_last else C_BODY_UNTIL_CLOSE
    if f.content_length > 0:
        length[0] = f.content_length
        return C_BODY_LENGTH
    return C_BODY_NONE if f.content_length == 0 else C_BODY_UNTIL_CLOSE


cdef inline bint _keep_alive(Fields* f, int version) noexcept:
    return not f.conn_close and (version == 11 or f.conn_keep_alive)


cdef object _find_header(bytes raw, bytes name):
    cdef cbytes p = <cbytes>PyBytes_AS_STRING(raw)
    cdef cbytes q = <cbytes>PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw), m = PyBytes_GET_SIZE(name), i, k, vs
    cdef const void* nl
    if m == 0 or _span(q, 0, m, C_TCHAR) != m:
        return None
    i = _find_crlf(p, 0, n) + 2
    while i + m < n:
        if p[i + m] == 58:
            for k in range(m):
                if LOWER[p[i + k]] != LOWER[q[k]]:
                    break
            else:
                vs = i + m + 1
                while _is_ws(p[vs]):
                    vs += 1
                k = _find_crlf(p, vs, n)
                return PyBytes_FromStringAndSize(<const char*>p + vs, _strip_end(p, vs, k) - vs)
        nl = memchr(p + i, 10, n - i)
        if nl == NULL:
            break
        i = <cbytes>nl - p + 1
    return None


# ---------------------------------------------------------------- heads

cdef class RequestHead:  # fields: httpscan.pxd
    """A request head: what routing and framing need; the bytes themselves stay in `raw`."""

    def header(self, bytes name):
        """First value of field `name` (any case), without surrounding whitespace."""
        return _find_header(self.raw, name)

    def __repr__(self):
        return (
            f"RequestHead(method={self.method!r}, target={self.target!r}, "
            f"version={self.version}, body={self.body}, content_length={self.content_length}, "
            f"keep_alive={self.keep_alive}, head_len={self.head_len})"
        )


cdef class ResponseHead:  # fields: httpscan.pxd
    """A response head: status and body framing; the bytes themselves stay in `raw`."""

    def header(self, bytes name):
        """First value of field `name` (any case), without surrounding whitespace."""
        return _find_header(self.raw, name)

    def __repr__(self):
        return (
            f"ResponseHead(status={self.status}, version={self.version}, body={self.body}, "
            f"content_length={self.content_length}, keep_alive={self.keep_alive}, "
            f"head_len={self.head_len})"
        )


cdef inline bytes _method(cbytes p, Py_ssize_t n):
    if n == 3 and memcmp(p, b"GET", 3) == 0:
        return M_GET
    if n == 4 and memcmp(p, b"POST", 4) == 0:
        return M_POST
    if n == 4 and memcmp(p, b"HEAD", 4) == 0:
        return M_HEAD
    if n == 3 and memcmp(p, b"PUT", 3) == 0:
        return M_PUT
    return PyBytes_FromStringAndSize(<const char*>p, n)


cdef inline bytes _raw(object buf, cbytes p, Py_ssize_t start, Py_ssize_t end, Py_ssize_t n):
    if start == 0 and end == n and type(buf) is bytes:
        return <bytes>buf
    return PyBytes_FromStringAndSize(<const char*>p + start, end - start)


def parse_request_head(object buf, Py_ssize_t max_size):
    """The request head at the start of `buf`, None while incomplete; HttpError if refused.

    Empty lines before the request line are skipped (counted in head_len, not in raw).
    Lines must end in CRLF: a bare LF or CR is refused, not tolerated.
    """
    cdef Py_ssize_t n, s = 0, e, le, i, target_end
    cdef cbytes p
    cdef Fields f
    cdef int version, body
    cdef int64_t length
    cdef RequestHead head
    if not isinstance(buf, (bytes, bytearray)):
        buf = bytes(buf)
    p = _pointer(buf, &n)
    while s + 1 < n and p[s] == 13 and p[s + 1] == 10:
        s += 2
    e = _find_end(p, s, n if n < max_size else max_size)
    if e < 0:
        if n >= max_size:
            raise HttpError(431, "request head too large")
        _check_bare(p, s, n, 400)
        le = _find_crlf(p, s, n)
        if le >= 0:
            _request_line(p, s, le, &target_end)
        elif n - s != 1 or p[s] != 13:  # a lone CR may start an empty line
            i = _span(p, s, n, C_TCHAR)
            if i < n and p[i] != 32:
                raise HttpError(400, "invalid method")
        return None
    le = _find_crlf(p, s, n)
    version = _request_line(p, s, le, &target_end)
    _scan_fields(p, le + 2, e + 2, &f, True)
    if version == 11 and f.hosts == 0:
        raise HttpError(400, "missing Host")
    if f.hosts > 1:
        raise HttpError(400, "more than one Host")
    body = _framing(&f, version, &length)
    if body == C_BODY_UNTIL_CLOSE:
        if f.codings:
            raise HttpError(400, "chunked is not the final transfer coding")
        body = C_BODY_NONE
    head = RequestHead.__new__(RequestHead)
    i = _span(p, s, le, C_TCHAR)
    head.method = _method(p + s, i - s)
    head.target = PyBytes_FromStringAndSize(<const char*>p + i + 1, target_end - i - 1)
    head.version = version
    head.head_len = e + 4
    head.body = body
    head.content_length = length
    head.keep_alive = _keep_alive(&f, version)
    if f.conn_upgrade and f.upgrade_start >= 0 and version == 11:
        head.upgrade = PyBytes_FromStringAndSize(
            <const char*>p + f.upgrade_start, f.upgrade_end - f.upgrade_start
        )
    else:
        head.upgrade = None
    head.expect_continue = f.expect_continue and version == 11
    head.raw = _raw(buf, p, s, e + 4, n)
    return head


def parse_response_head(object buf, Py_ssize_t max_size, bytes method):
    """The response head at the start of `buf` (answering `method`), None while incomplete.

    Every malformed or ambiguous response is HttpError(502).
    """
    try:
        return _response_head(buf, max_size, method)
    except HttpError as exc:
        if exc.status == 502:
            raise
        raise HttpError(502, exc.reason) from None


cdef object _response_head(object buf, Py_ssize_t max_size, bytes method):
    cdef Py_ssize_t n, e, le
    cdef cbytes p
    cdef Fields f
    cdef int version, body, status
    cdef int64_t length
    cdef bint tunnel
    cdef ResponseHead head
    if not isinstance(buf, (bytes, bytearray)):
        buf = bytes(buf)
    p = _pointer(buf, &n)
    e = _find_end(p, 0, n if n < max_size else max_size)
    if e < 0:
        if n >= max_size:
            raise HttpError(502, "response head too large")
        _check_bare(p, 0, n, 502)
        le = _find_crlf(p, 0, n)
        if le >= 0:
            _status_line(p, le, &version)
        elif memcmp(p, b"HTTP/", n if n < 5 else 5) != 0:
            raise HttpError(502, "invalid status line")
        return None
    le = _find_crlf(p, 0, n)
    status = _status_line(p, le, &version)
    _scan_fields(p, le + 2, e + 2, &f, False)
    body = _framing(&f, version, &length)
    tunnel = status == 101 or (200 <= status < 300 and method == b"CONNECT")
    if tunnel or status < 200 or status == 204 or status == 304 or method == b"HEAD":
        body = C_BODY_NONE
        length = 0
    head = ResponseHead.__new__(ResponseHead)
    head.status = status
    head.version = version
    head.head_len = e + 4
    head.body = body
    head.content_length = length
    head.keep_alive = _keep_alive(&f, version) and body != C_BODY_UNTIL_CLOSE and not tunnel
    head.raw = _raw(buf, p, 0, e + 4, n)
    return head


# ---------------------------------------------------------------- chunked bodies

cdef class ChunkedScanner:  # fields: httpscan.pxd
    """Follows one chunked body through the bytes fed to it.

    feed() returns how many of the bytes from `start` on belong to the body; once `done`, the
    rest of the data is the next message. Malformed framing raises HttpError(400).
    """


    def __init__(self, Py_ssize_t max_trailer=16384):
        self.done = False
        self._state = S_SIZE
        self._size = 0
        self._digits = 0
        self._count = 0
        self._max_trailer = max_trailer

    def feed(self, object data, Py_ssize_t start=0):
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef cbytes p
        if isinstance(data, (bytes, bytearray)):
            p = _pointer(data, &n)
            return self._feed(p, n, start)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._feed(<cbytes>view.buf, view.len, start)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _feed(self, cbytes p, Py_ssize_t end, Py_ssize_t start) except -1:
        cdef Py_ssize_t i = start
        cdef unsigned char state = self._state, nxt, c
        cdef uint64_t take
        if not 0 <= start <= end:
            raise ValueError("start outside data")
        while i < end and state != S_DONE:
            if state == S_DATA:
                take = <uint64_t>(end - i)
                if self._size < take:
                    take = self._size
                i += <Py_ssize_t>take
                self._size -= take
                if not self._size:
                    state = S_DATA_CR
                continue
            c = p[i]
            i += 1
            nxt = TRANS[state][c]
            if nxt == S_REFUSE or (state == S_SIZE and nxt != S_SIZE and not self._digits):
                raise HttpError(400, CHUNK_REASONS[state])
            if state <= S_LINE_LF:
                self._count += 1
                if self._count > MAX_CHUNK_LINE:
                    raise HttpError(400, "chunk size line too long")
                if nxt == S_SIZE:
                    self._digits += 1
                    if self._digits > MAX_CHUNK_SIZE_DIGITS:
                        raise HttpError(400, "invalid chunk size")
                    self._size = self._size * 16 + (c & 15) + (9 if c > 57 else 0)
                elif nxt == S_DATA and not self._size:
                    nxt = S_TRAILER
                    self._count = 0
            elif state >= S_TRAILER:
                self._count += 1
                if self._count > self._max_trailer:
                    raise HttpError(400, "trailer section too large")
            elif nxt == S_SIZE:  # a new chunk-size line
                self._size = 0
                self._digits = 0
                self._count = 0
            state = nxt
        self._state = state
        self.done = state == S_DONE
        return i - start
