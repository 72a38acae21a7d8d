# Compiled build (tcpvs/compiled.py): the scanner as an extension type whose loop runs in C on
# the buffer's bytes. chunked.py is the source.
cimport cython
from libc.stdint cimport uint64_t

cdef unsigned char SIZE, LINE_LF, DATA, DATA_CR, TRAILER, DONE, REFUSE
cdef const unsigned char* TABLE


cdef class ChunkedScanner:
    cdef readonly bint done
    cdef unsigned char _state
    cdef uint64_t _size  # chunk size being read, then data bytes still to come
    cdef int _digits
    cdef Py_ssize_t _count  # bytes of the current chunk-size line, or of the trailer section
    cdef Py_ssize_t _max_trailer

    @cython.locals(p="const unsigned char*", end=Py_ssize_t, i=Py_ssize_t, state="unsigned char",
                   nxt="unsigned char", c="unsigned char", take=uint64_t)
    cpdef Py_ssize_t feed(self, data, Py_ssize_t start=*) except -1
