# Compiled build (tcpvs/compiled.py): the relays as extension types with C fields and C calls
# on every read and write. relay.py is the source.
from tcpvs.exchange.base cimport Exchange, Site


cdef class Relay:
    cdef public object owner
    cdef public Site site
    cdef public Exchange exchange
    cdef public object src
    cdef public object dst
    cdef public object server
    cdef public bint held
    cdef public bint blocked
    cdef public bint paused
    cdef public bint ended
    cdef public Py_ssize_t pass_left
    cdef public Py_ssize_t copied
    cdef public object splice
    cdef public Py_ssize_t client_bytes

    cpdef count_read(self, Py_ssize_t n)
    cpdef count_written(self, Py_ssize_t n)
    cpdef deliver(self, data)
    cpdef deliver_end(self)
    cpdef received(self, data)
    cpdef source_ended(self)
    cpdef set_source(self, transport, server)
    cpdef set_destination(self, transport, server, bint blocked)
    cpdef hold(self, bint held)
    cpdef set_blocked(self, bint blocked)
    cdef _update(self)
    cpdef write(self, data)
    cpdef pass_through(self, Py_ssize_t nbytes)
    cdef _pass(self, data)
    cdef _pass_end(self)
    cdef _splice(self, Py_ssize_t nbytes)
    cdef _stop_splice(self)
    cpdef close(self)


cdef class ClientToServer(Relay):
    pass


cdef class ServerToClient(Relay):
    pass
