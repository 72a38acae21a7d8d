# Declarations of the head scanner's types, so that the compiled engine (tcpvs/engine/*.pxd)
# reads their fields in C. The classes themselves are in httpscan.pyx.
from libc.stdint cimport int64_t, uint64_t

ctypedef const unsigned char* cbytes

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

cdef class ChunkedScanner:
    cdef readonly bint done
    cdef unsigned char _state
    cdef uint64_t _size  # chunk size being read, then data bytes still to come
    cdef int _digits
    cdef Py_ssize_t _count  # bytes of the current chunk-size line, or of the trailer section
    cdef Py_ssize_t _max_trailer

    cdef Py_ssize_t _feed(self, cbytes p, Py_ssize_t end, Py_ssize_t start) except -1
