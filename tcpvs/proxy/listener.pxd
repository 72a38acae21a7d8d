# Compiled build (tcpvs/compiled.py): the listener as an extension type, so the exchanges read
# its clock and service in C on every request. listener.py is the source.
from tcpvs.exchange.base cimport Site
from tcpvs.proxy.upstream cimport ServerPool


cdef class ServiceListener(Site):
    cdef public bint reuse_port
    cdef public ServerPool pool
    cdef public set connections
    cdef public object _server
    cdef public object _ticker
    cdef public object _redirect
    cdef public object on_outlier
    cdef object _tls_context
    cdef public set handshaking
    cdef dict _contexts
    cdef object _contexts_of
    cdef object _protocol

    cpdef redirect_server(self)
    cpdef handshake_started(self, layer)
    cpdef handshake_ended(self, layer)
    cpdef outlier(self, server, str reason)
