# Compiled build only (see tcpvs/engine/__init__.py): HttpFrontend as an extension type with C
# fields (the parsed heads' too) and C calls between its methods. http.py is the source.
cimport cython

# (renamed: http.py imports the same classes under these names at run time)
from tcpvs._fast.httpscan cimport ChunkedScanner as Chunked, RequestHead as Request, ResponseHead as Response
from tcpvs.engine.frontend cimport Frontend
from tcpvs.engine.pool cimport BackendConnection


cdef class HttpFrontend(Frontend):
    cdef public bytearray _buf
    cdef public Request _req
    cdef public object _ctx
    cdef public object _candidates
    cdef public list _tried
    cdef public object _server
    cdef public object _previous
    cdef public Py_ssize_t _body_left
    cdef public Chunked _body_scanner
    cdef public Py_ssize_t _body_avail
    cdef public bint _body_complete
    cdef public Response _resp
    cdef public bytearray _resp_buf
    cdef public Py_ssize_t _resp_left
    cdef public Chunked _resp_scanner
    cdef public bint _resp_started
    cdef public bint _resp_clean
    cdef public bint _stopping
    cdef public bytes _xff

    cdef _read_head(self, buf)
    @cython.locals(head=Request)
    cdef _begin(self, head)
    cdef bint _body_ready_to_dispatch(self)
    cdef _scan_body(self)
    cdef bytes _take_body(self)
    cdef _dispatch(self)
    cdef _no_server(self)
    cdef _send_to(self, server)
    @cython.locals(resp=Response, rest_len=Py_ssize_t)
    cdef _read_response_head(self, data)
    @cython.locals(resp=Response, n=Py_ssize_t, complete=bint)
    cdef _relay_body(self, data, Py_ssize_t start=*)
    cdef _to_client(self, data)
    @cython.locals(resp=Response, req=Request, conn=BackendConnection, body_sent=bint)
    cdef _end_response(self)
    cdef _fail(self, int status)
