# Compiled build only (see tcpvs/engine/__init__.py): the client-side protocols as extension
# types with C fields, and C calls between engine methods. frontend.py is the source.
from tcpvs.engine.listener cimport ServiceListener
from tcpvs.engine.pool cimport BackendConnection

cpdef eligible(servers, list tried, double now)


cdef class Frontend:
    cdef public ServiceListener listener
    cdef public object transport
    cdef public object client
    cdef public BackendConnection backend
    cdef public double deadline
    cdef public bint tunnel
    cdef public bint _client_eof
    cdef public bint _reading_paused
    cdef public object _connecting
    cdef public object _splice
    cdef public Py_ssize_t _copy_left

    cpdef choose(self, service, candidates, ctx, list tried)
    cpdef connected(self, BackendConnection conn)
    cpdef connect_failed(self, server)
    cpdef backend_data(self, data)
    cpdef tunnel_to_client(self, data)
    cpdef tunnel_to_server(self, data)
    cdef _copied(self, Py_ssize_t n)
    cpdef follow_server_writing(self, BackendConnection conn)


cdef class RawFrontend(Frontend):
    cdef public bytearray _pending
    cdef public list _tried
    cdef public object _ctx
