# Compiled build (tcpvs/compiled.py): TcpExchange as an extension type. tcp.py is the source.
from tcpvs.exchange.base cimport Exchange

cdef int CONNECTING, TUNNEL


cdef class TcpExchange(Exchange):
    cdef public bytearray pending

    cdef _dispatch(self)
    cdef _end(self, int cause)
