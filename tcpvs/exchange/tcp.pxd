# Compiled build (tcpvs/compiled.py): TcpExchange as an extension type. tcp.py is the source.
from tcpvs.exchange.base cimport Exchange

cdef int CONNECTING, TUNNEL, HELLO


cdef class TcpExchange(Exchange):
    cdef public bytearray pending
    cdef public list candidates

    cdef _dispatch(self, list candidates)
    cdef _read_hello(self)
    cdef _connect(self, server, int cause)
    cdef _end(self, int cause)
