# Compiled build (tcpvs/compiled.py): the head scanner with its loops in C on the buffer's bytes,
# and the heads as extension types whose fields the exchange reads in C. heads.py is the source.
cimport cython
from libc.stdint cimport int64_t, uint64_t

ctypedef const unsigned char* cbytes

cdef cbytes CLS
cdef cbytes LOWER
cdef unsigned char TCHAR, FIELD, TARGET, HOST
cdef uint64_t MAX_LENGTH


cdef class RequestHead:
    cdef readonly bytes method
    cdef readonly bytes target
    cdef readonly int version
    cdef readonly Py_ssize_t head_len
    cdef readonly int body
    cdef readonly int64_t content_length
    cdef readonly bint keep_alive
    cdef readonly object upgrade
    cdef readonly bint expect_continue
    cdef readonly bytes raw


cdef class ResponseHead:
    cdef readonly int status
    cdef readonly int version
    cdef readonly Py_ssize_t head_len
    cdef readonly int body
    cdef readonly int64_t content_length
    cdef readonly bint keep_alive
    cdef readonly bytes raw


cdef inline bint _is_ws(unsigned char c) noexcept
cdef Py_ssize_t _span(cbytes p, Py_ssize_t i, Py_ssize_t n, unsigned char flag) noexcept
cdef Py_ssize_t _digits(cbytes p, Py_ssize_t i, Py_ssize_t n) noexcept
cdef Py_ssize_t _item_end(cbytes p, Py_ssize_t i, Py_ssize_t b) noexcept
cdef Py_ssize_t _skip_ws(cbytes p, Py_ssize_t i, Py_ssize_t end) noexcept
cdef Py_ssize_t _strip_end(cbytes p, Py_ssize_t start, Py_ssize_t end) noexcept
@cython.locals(k=Py_ssize_t)
cdef bint _ieq(cbytes p, Py_ssize_t at, cbytes lower, Py_ssize_t n) noexcept
@cython.locals(k=Py_ssize_t)
cdef bint _eq(cbytes p, Py_ssize_t at, cbytes text, Py_ssize_t n) noexcept
cdef Py_ssize_t _find_crlf(cbytes p, Py_ssize_t i, Py_ssize_t n) noexcept
@cython.locals(i=Py_ssize_t, c="unsigned char")
cdef Py_ssize_t _find_end(cbytes p, Py_ssize_t start, Py_ssize_t limit) noexcept
@cython.locals(i=Py_ssize_t, c="unsigned char")
cdef _check_bare(cbytes p, Py_ssize_t start, Py_ssize_t n, int status)


cdef class _Scan:
    cdef int version
    cdef Py_ssize_t target_end
    cdef int status
    cdef int body
    cdef int64_t length
    cdef int64_t content_length
    cdef int codings
    cdef bint chunked
    cdef bint chunked_last
    cdef bint conn_close
    cdef bint conn_keep_alive
    cdef bint conn_upgrade
    cdef Py_ssize_t upgrade_start
    cdef Py_ssize_t upgrade_end
    cdef bint expect_continue
    cdef int hosts
    cdef int err_status
    cdef str err_reason

    cdef reset(self)
    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, k=Py_ssize_t)
    cdef request_line(self, cbytes p, Py_ssize_t s, Py_ssize_t le)
    cdef status_line(self, cbytes p, Py_ssize_t le)
    cdef fail(self, int status, str reason)
    @cython.locals(ns=Py_ssize_t, nlen=Py_ssize_t, vs=Py_ssize_t, ve=Py_ssize_t, c="unsigned char")
    cdef fields(self, cbytes p, Py_ssize_t i, Py_ssize_t stop, bint request)
    @cython.locals(i=Py_ssize_t, k=Py_ssize_t, end=Py_ssize_t, value=uint64_t, d=int)
    cdef _content_length(self, cbytes p, Py_ssize_t a, Py_ssize_t b)
    @cython.locals(i=Py_ssize_t, k=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t, chunked=bint)
    cdef _transfer_encoding(self, cbytes p, Py_ssize_t a, Py_ssize_t b)
    @cython.locals(i=Py_ssize_t, k=Py_ssize_t, n=Py_ssize_t)
    cdef _connection(self, cbytes p, Py_ssize_t a, Py_ssize_t b)
    cdef framing(self)
    cdef bint keep_alive(self)


@cython.locals(p=cbytes, q=cbytes, n=Py_ssize_t, m=Py_ssize_t, i=Py_ssize_t, k=Py_ssize_t,
               vs=Py_ssize_t)
cpdef find_header(bytes raw, bytes name)
cdef _Scan _SCAN
cdef bytes _method(cbytes p, Py_ssize_t s, Py_ssize_t n)
@cython.locals(p=cbytes, n=Py_ssize_t, s=Py_ssize_t, e=Py_ssize_t, le=Py_ssize_t, i=Py_ssize_t,
               version=int, body=int, scan=_Scan, head=RequestHead)
cpdef parse_request_head(buf, Py_ssize_t max_size)
cpdef parse_response_head(buf, Py_ssize_t max_size, bytes method)
@cython.locals(p=cbytes, n=Py_ssize_t, e=Py_ssize_t, le=Py_ssize_t, status=int, body=int,
               length=int64_t, tunnel=bint, scan=_Scan, head=ResponseHead)
cdef _response_head(buf, Py_ssize_t max_size, bytes method)
