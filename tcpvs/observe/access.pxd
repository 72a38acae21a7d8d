# Compiled build (tcpvs/compiled.py): the access log as an extension type with C fields and
# C helpers, since it runs once per request when on (a text line costs 5.6 µs interpreted, 3.5
# compiled: docs/benchmarks.md). Its writer thread is tcpvs/observe/writer.py, not compiled.
# access.py is the source.

cdef long _ms(double start, double stop)
cdef str _address(str host, long port)


cdef class AccessLog:
    cdef public str path
    cdef public bint json
    cdef public list lines
    cdef object _timer
    cdef dict _names
    cdef long _second
    cdef str _seconds_text
    cdef double _wall
    cdef object _writer

    cpdef request(self, exchange, server, double begin, double end, int status, int cause)
    cdef str _name(self, address)
    cdef str _stamp(self, double wall)
    cdef _set_wall(self)
    cpdef flush(self)
    cpdef reopen(self)
