# Compiled build only (see tcpvs/engine/__init__.py): the listener as an extension type, so the
# protocols read its clock, service and pool in C on every request. listener.py is the source.
from tcpvs.engine.pool cimport ServerPool


cdef class ServiceListener:
    cdef public object service
    cdef public bint reuse_port
    cdef public ServerPool pool
    cdef public set connections
    cdef public double now
    cdef public object _server
    cdef public object _ticker
    cdef public object _redirect
    cdef object _http_protocol
    cdef object _raw_protocol
