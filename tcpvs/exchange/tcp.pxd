# Compiled build (tcpvs/compiled.py): TcpExchange as an extension type. tcp.py is the source.
from tcpvs.exchange.base cimport Exchange

cdef int CONNECTING, TUNNEL


cdef class TcpExchange(Exchange):
    cdef public bytearray pending
    cdef public object target

    cdef _dispatch(self)
