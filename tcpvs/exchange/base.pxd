# Compiled build (tcpvs/compiled.py): the exchange base, Site and Port as extension types with
# C fields and C-level calls. base.py is the source.

cimport cython


cdef class Site:
    cdef public object service
    cdef public double now
    cdef public object access
    cdef public bint tls

    cpdef redirect_server(self)
    cpdef double clock(self) except? -1
    cpdef outlier(self, server, str reason)


cdef class Port:
    cpdef send_client(self, data)
    cpdef send_server(self, data)
    cpdef pass_to_client(self, Py_ssize_t nbytes)
    cpdef bint open_server(self, server, bint fresh=*) except -1
    cpdef release_server(self)
    cpdef drop_server(self)
    cpdef hold_client(self, bint hold)
    cpdef tunnel(self)
    cpdef close_client(self)
    cpdef abort_client(self)
    cpdef tuple transferred(self)


@cython.locals(index=Py_ssize_t, bound=double)
cpdef observe(histogram, double seconds)
cpdef eligible(servers, list tried, double now)


cdef class Exchange:
    cdef public Site site
    cdef public Port port
    cdef public int state
    cdef public double since
    cdef public bint extended
    cdef public object ctx
    cdef public list tried
    cdef public object target
    cdef public object server
    cdef public object told
    cdef public double t_begin
    cdef public double t_ready
    cdef public double t_connect
    cdef public double t_response
    cdef public int retries
    cdef public Py_ssize_t req_bytes
    cdef public Py_ssize_t out_mark

    cdef _go(self, int state, bint extended)
    cpdef active(self)
    cpdef double patience(self) except -1
    cpdef bint expired(self, double now) except -1
    cdef _choose(self, candidates)
    cdef _take(self, server)
    cdef _give_back(self)
    cdef _failed(self, server)
    cdef _next_try(self, candidates, Py_ssize_t served, stale=*)
    cdef _open(self)
    @cython.locals(status_class=int)
    cdef _record(self, int status, int cause, server)
    cdef int _refusal(self) except -1
    cdef _finish(self)
    cdef _close(self)
    cdef _abort(self)
    cpdef start(self)
    cpdef client_data(self, data)
    cpdef client_ended(self)
    cpdef server_ready(self, bint reused)
    cpdef server_failed(self, server)
    cpdef server_data(self, data)
    cpdef server_ended(self)
    cpdef passed(self, rest)
    cpdef tunnel_ended(self)
    cpdef broken(self)
    cpdef timeout(self)
    cpdef shutdown(self)
    cpdef refuse(self)
    cpdef lost(self)
