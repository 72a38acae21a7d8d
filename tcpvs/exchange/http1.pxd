# Compiled build (tcpvs/compiled.py): HttpExchange as an extension type with C fields (the
# parsed heads' too) and C calls between its methods. http1.py is the source.
cimport cython

# (renamed: http1.py imports the same classes under these names at run time)
from tcpvs.http.chunked cimport ChunkedScanner as Chunked
from tcpvs.http.heads cimport RequestHead as Request, ResponseHead as Response
from tcpvs.exchange.base cimport Exchange, observe

cdef object _tracer
cdef int HEAD, IDLE, BUFFERING, CONNECTING, SENDING, WAITING, RESPONDING, TUNNEL


cdef class HttpExchange(Exchange):
    cdef public bytes xff
    cdef public bytearray buf
    cdef public bint holding
    cdef public bint client_done
    cdef public bint stopping
    cdef public Request req
    cdef public object candidates
    cdef public object previous
    cdef public bint reused
    cdef public Py_ssize_t body_left
    cdef public Chunked body_scanner
    cdef public Py_ssize_t body_avail
    cdef public bint body_complete
    cdef public Response resp
    cdef public bytearray resp_buf
    cdef public Py_ssize_t resp_left
    cdef public Chunked resp_scanner
    cdef public bint resp_started
    cdef public bint resp_clean

    cdef _enter(self, int state)
    cdef _hold(self, bint hold)
    cdef _read_head(self, buf)
    @cython.locals(head=Request)
    cdef _begin(self, head)
    @cython.locals(req=Request)
    cdef bint _ready_to_dispatch(self)
    cdef _scan_body(self)
    cdef bytes _take_body(self)
    cdef _dispatch(self)
    cdef _no_server(self)
    cdef _to_https(self, head)
    cdef _reach(self, server, bint fresh)
    @cython.locals(resp=Response, req=Request, resp_head_len=Py_ssize_t, body=int, now=double)
    cdef _read_response_head(self, data)
    cdef _switch_protocols(self, buf)
    @cython.locals(resp=Response, scanner=Chunked, n=Py_ssize_t, complete=bint, body=int)
    cdef _relay_body(self, data, Py_ssize_t start)
    @cython.locals(req=Request, resp=Response, body_sent=bint)
    cdef _end_response(self)
    cdef _fail(self, int status, int cause)
    cdef _cut(self, int cause)
    @cython.locals(resp=Response)
    cdef _cut_record(self, int cause)
    cdef _tunnel_done(self)
    cdef int _refusal(self) except -1
    @cython.locals(req=Request)
    cpdef server_ready(self, bint reused)
    @cython.locals(req=Request)
    cpdef server_ended(self)
