# Compiled build (tcpvs/compiled.py): TcpExchange as an extension type. tcp.py is the source.
from tcpvs.exchange.base cimport Exchange

cdef int CONNECTING, TUNNEL


cdef class TcpExchange(Exchange):
    cdef public bytearray pending

    cdef _dispatch(self)
    cdef _connect(self, server, int cause)
    cdef _end(self, int cause)
