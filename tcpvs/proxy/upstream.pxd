# Compiled build (tcpvs/compiled.py): the server side as extension types with C fields, and C
# calls for what the client side calls per request. upstream.py is the source.
from tcpvs.proxy.relay cimport Relay

cdef class ServerPool


cdef class ServerConnection:
    cdef public ServerPool pool
    cdef public object server
    cdef public object key
    cdef public object transport
    cdef public object peer
    cdef public Relay reader
    cdef public Relay writer
    cdef public bint reused
    cdef public double idle_deadline
    cdef public list early
    cdef public bint write_paused

    cpdef replay_early(self)
    cpdef close(self)


cdef class ServerPool:
    cdef public dict _idle

    cpdef ServerConnection acquire(self, server, service)
    cpdef release(self, ServerConnection conn, double deadline)
    cpdef forget(self, ServerConnection conn)
