# Compiled build (tcpvs/compiled.py): the client connection as an extension type with C fields
# and C calls to its relays and exchange. client.py is the source.
from tcpvs.exchange.base cimport Exchange, Port
from tcpvs.proxy.listener cimport ServiceListener
from tcpvs.proxy.relay cimport ClientToServer, Relay, ServerToClient
from tcpvs.proxy.upstream cimport ServerConnection


cdef class ClientConnection(Port):
    cdef public ServiceListener listener
    cdef public object transport
    cdef public ClientToServer inbound
    cdef public ServerToClient outbound
    cdef public Exchange exchange
    cdef public ServerConnection server_conn
    cdef public object connecting
    cdef public bint tunneling
    cdef public int tunnel_ends

    cdef _attach(self, ServerConnection conn)
    cdef ServerConnection _detach(self)
    cpdef relay_passed(self, Relay relay, rest)
    cpdef relay_failed(self, Relay relay)
    cpdef server_lost(self, ServerConnection conn)
    cpdef expire(self)
    cpdef shutdown(self)
    cpdef abort(self)
