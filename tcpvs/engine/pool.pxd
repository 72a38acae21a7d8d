# Compiled build only (see tcpvs/engine/__init__.py): the server side as extension types with
# C fields, and C calls for what the client side calls per request. pool.py is the source.

cdef class ServerPool


cdef class BackendConnection:
    cdef public ServerPool pool
    cdef public object server
    cdef public object transport
    cdef public object peer
    cdef public bint reused
    cdef public double idle_deadline
    cdef public list early
    cdef public bint paused

    cpdef attach(self, peer)
    cpdef write(self, data)
    cpdef close(self)


cdef class ServerPool:
    cdef public dict _idle

    cpdef BackendConnection acquire(self, server)
    cpdef release(self, BackendConnection conn, double deadline)
    cpdef forget(self, BackendConnection conn)
