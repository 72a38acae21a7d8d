# Compiled build only: makes HttpFrontend an extension type with C-level fields.
# tcpvs/engine/http.py stays the one source (and runs as is when not compiled).
from tcpvs.engine.frontend cimport Frontend

cdef class HttpFrontend(Frontend):
    cdef public bytearray _buf
    cdef public object _req
    cdef public object _ctx
    cdef public object _candidates
    cdef public list _tried
    cdef public object _server
    cdef public object _previous
    cdef public Py_ssize_t _body_left
    cdef public object _body_scanner
    cdef public Py_ssize_t _body_avail
    cdef public bint _body_complete
    cdef public object _resp
    cdef public bytearray _resp_buf
    cdef public Py_ssize_t _resp_left
    cdef public object _resp_scanner
    cdef public bint _resp_started
    cdef public bint _resp_clean
    cdef public bint _stopping
    cdef public bytes _xff

    cdef _read_head(self, buf)
    cdef _begin(self, head)
    cdef bint _body_ready_to_dispatch(self)
    cdef _scan_body(self)
    cdef bytes _take_body(self)
    cdef _dispatch(self)
    cdef _no_server(self)
    cdef _send_to(self, server)
    cdef _read_response_head(self, data)
    cdef _relay_body(self, data, Py_ssize_t start=*)
    cdef _to_client(self, data)
    cdef _end_response(self)
    cdef _fail(self, int status)
