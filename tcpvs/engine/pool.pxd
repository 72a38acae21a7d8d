# Compiled build only: makes BackendConnection an extension type with C-level fields.
# tcpvs/engine/pool.py stays the one source (and runs as is when not compiled).

cdef class BackendConnection:
    cdef public object pool
    cdef public object server
    cdef public object transport
    cdef public object peer
    cdef public bint reused
    cdef public double idle_deadline
    cdef public list early
