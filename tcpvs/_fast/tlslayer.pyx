# cython: language_level=3
"""TlsLayer: TLS between a client's TCP transport and its ClientConnection, in C over OpenSSL.

It does what the event loop's TLS layer (uvloop's SSLProtocol, asyncio's design) does for a
server connection, with the same memory BIOs and the same SSL_CTX (Python's ssl.SSLContext,
so every setting of tcpvs.tls.settings and every certificate loaded by tcpvs.tls.certs
applies), but calls OpenSSL directly: no Python-level SSLObject method, no SSLWantReadError
built for each handshake step, no Python SNI callback, one bytes object per flush. That part
of the loop's layer cost a new connection about 210 µs more than HAProxy's
(docs/benchmarks.md, "Where a handshake's time goes").

To the TCP transport it is the protocol; to the ClientConnection it is the transport (write,
pause_reading, resume_reading, close, abort, get_extra_info), and it calls the
ClientConnection's connection_made only once the handshake is done, as the loop's layer does.
A handshake that does not end by its deadline is cut by the listener's ticker
(`handshake_expired`). TLS has no half-close: a close_notify or a FIN from the client is its
end, after which the layer closes.

Built only when OpenSSL's headers are there (setup.py); without it, or with the pure-Python
engine, the listener gives the loop its SSLContext as before (tcpvs.proxy.listener).
"""

import logging

from tcpvs.http.responses import plain_http_answer
from tcpvs.tls import tickets

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport floor
from libc.stdint cimport uintptr_t
from libc.string cimport memcmp, memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

log = logging.getLogger("tcpvsd")


cdef extern from "openssl/ssl.h" nogil:
    ctypedef struct SSL
    ctypedef struct SSL_CTX
    ctypedef struct BIO
    ctypedef struct BIO_METHOD

    SSL *SSL_new(SSL_CTX *ctx)
    void SSL_free(SSL *s)
    void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio)
    void SSL_set_accept_state(SSL *s)
    int SSL_do_handshake(SSL *s)
    int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
    int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
    int SSL_get_error(const SSL *s, int ret)
    int SSL_shutdown(SSL *s)
    int SSL_pending(const SSL *s)
    const char *SSL_get_servername(const SSL *s, int kind)
    SSL_CTX *SSL_set_SSL_CTX(SSL *s, SSL_CTX *ctx)
    SSL_CTX *SSL_get_SSL_CTX(const SSL *s)
    int SSL_set_ex_data(SSL *s, int idx, void *data)
    void *SSL_get_ex_data(const SSL *s, int idx)
    long SSL_set_mode(SSL *s, long mode)
    const char *SSL_get_version(const SSL *s)
    long SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *))

    enum:
        SSL_ERROR_WANT_READ
        SSL_ERROR_ZERO_RETURN
        TLSEXT_NAMETYPE_host_name
        SSL_TLSEXT_ERR_OK
        SSL_TLSEXT_ERR_ALERT_FATAL
        SSL_AD_INTERNAL_ERROR
        SSL_MODE_RELEASE_BUFFERS

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_CIPHER
    ctypedef struct EVP_CIPHER_CTX
    ctypedef struct EVP_MAC_CTX
    EVP_CIPHER *EVP_CIPHER_fetch(void *libctx, const char *algorithm, const char *properties)
    int EVP_EncryptInit_ex(
        EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, void *impl, const unsigned char *key,
        const unsigned char *iv
    )
    int EVP_DecryptInit_ex(
        EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, void *impl, const unsigned char *key,
        const unsigned char *iv
    )
    int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM *params)

cdef extern from "openssl/params.h" nogil:
    ctypedef struct OSSL_PARAM:
        const char *key
        unsigned int data_type
        void *data
        size_t data_size
        size_t return_size
    OSSL_PARAM OSSL_PARAM_construct_octet_string(const char *key, void *buf, size_t size)
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char *key, char *buf, size_t size)
    OSSL_PARAM OSSL_PARAM_construct_end()

cdef extern from "openssl/rand.h" nogil:
    int RAND_bytes(unsigned char *buf, int num)

cdef extern from "openssl/tls1.h" nogil:
    int SSL_CTX_set_tlsext_ticket_key_evp_cb(
        SSL_CTX *ctx,
        int (*cb)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int)
    )

cdef extern from "openssl/bio.h" nogil:
    BIO *BIO_new(const BIO_METHOD *kind)
    const BIO_METHOD *BIO_s_mem()
    void BIO_free(BIO *b)
    int BIO_write(BIO *b, const void *data, int length)
    int BIO_read(BIO *b, void *data, int length)
    size_t BIO_ctrl_pending(BIO *b)
    long BIO_set_mem_eof_return(BIO *b, int v)

cdef extern from "openssl/err.h" nogil:
    unsigned long ERR_get_error()
    void ERR_clear_error()
    void ERR_error_string_n(unsigned long e, char *buf, size_t length)


# Plain text is read into this buffer (one process, one thread) and handed on as one bytes
# object per batch of records; a batch is at most what one data_received brought.
DEF READ_SIZE = 262144
cdef char read_buffer[READ_SIZE]


cdef str _openssl_error():
    """The first error on OpenSSL's queue, as text; the queue is left empty (Python's ssl
    module shares it, and reads it after its own calls)."""
    cdef char text[256]
    cdef unsigned long code = ERR_get_error()
    ERR_clear_error()
    if code == 0:
        return "connection closed or unexpected message"
    ERR_error_string_n(code, text, sizeof(text))
    return text.decode("ascii", "replace")


cdef int _choose_certificate(SSL *s, int *alert, void *arg) noexcept with gil:
    """OpenSSL's servername callback, for every handshake (SNI or not): the listener says
    which certificate's SSL_CTX serves this name."""
    cdef TlsLayer layer = <TlsLayer>SSL_get_ex_data(s, 0)
    cdef const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name)
    cdef uintptr_t chosen
    try:
        chosen = layer.listener.certificate_for(
            None if name == NULL else name.decode("ascii", "replace")
        )
        if chosen != 0 and <SSL_CTX *>chosen != SSL_get_SSL_CTX(s):
            SSL_set_SSL_CTX(s, <SSL_CTX *>chosen)
        return SSL_TLSEXT_ERR_OK
    except BaseException:
        alert[0] = SSL_AD_INTERNAL_ERROR
        return SSL_TLSEXT_ERR_ALERT_FATAL


# -- session tickets: tcpvs.tls.tickets' keys, read by OpenSSL's callback without Python -------

cdef struct TicketKey:
    unsigned char name[16]
    unsigned char aes[32]
    unsigned char hmac[32]

DEF MAX_KEYS = 8
cdef TicketKey ring[MAX_KEYS]  # [0]: the current period's; then the ones before, still read
cdef int ring_size = 0
cdef long long ring_period = 0
cdef double ring_rotation = 1.0
cdef const EVP_CIPHER *aes_256_cbc = NULL


def _forget_keys():
    """The process's keys changed (tickets.configure): read them again at the next ticket."""
    global ring_size
    ring_size = 0


tickets.on_configure(_forget_keys)


cdef int _read_keys(double now) noexcept with gil:
    """Copy the keys of `now`'s period out of tcpvs.tls.tickets; 0 if that failed."""
    global ring_size, ring_period, ring_rotation
    try:
        keys = tickets.process_keys()
        period = keys.period(now)
        count = min(tickets.KEEP + 1, MAX_KEYS)
        for i in range(count):
            key = keys.key(period - i)
            memcpy(ring[i].name, <const char *>key.name, 16)
            memcpy(ring[i].aes, <const char *>key.aes, 32)
            memcpy(ring[i].hmac, <const char *>key.hmac, 32)
        ring_period, ring_rotation, ring_size = period, keys.rotation, count
        return 1
    except BaseException:
        return 0


cdef int _ticket_key(
    SSL *s,
    unsigned char *name,
    unsigned char *iv,
    EVP_CIPHER_CTX *cipher,
    EVP_MAC_CTX *mac,
    int seal,
) noexcept nogil:
    """OpenSSL's ticket key callback: seal with the current key, open with any kept one (and
    then ask for a new ticket); 0: no ticket issued, or a full handshake."""
    cdef timespec clock
    cdef double now
    cdef int i
    cdef OSSL_PARAM params[3]
    clock_gettime(CLOCK_REALTIME, &clock)
    now = clock.tv_sec + clock.tv_nsec * 1e-9
    if ring_size == 0 or <long long>floor(now / ring_rotation) != ring_period:
        if not _read_keys(now):
            return 0
    i = 0  # sealing: the current key; opening: the first whose name matches
    if seal:
        memcpy(name, ring[0].name, 16)
        if RAND_bytes(iv, 16) != 1:
            return 0
        if not EVP_EncryptInit_ex(cipher, aes_256_cbc, NULL, ring[0].aes, iv):
            return 0
    else:
        while i < ring_size and memcmp(name, ring[i].name, 16) != 0:
            i += 1
        if i == ring_size:
            return 0
        if not EVP_DecryptInit_ex(cipher, aes_256_cbc, NULL, ring[i].aes, iv):
            return 0
    params[0] = OSSL_PARAM_construct_octet_string("key", ring[i].hmac, 32)
    params[1] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0)
    params[2] = OSSL_PARAM_construct_end()
    if not EVP_MAC_CTX_set_params(mac, params):
        return 0
    return 2 if i else 1


def prepare(uintptr_t context):
    """Make the SSL_CTX at `context` (a listener's, from tcpvs.tls.openssl.ssl_ctx_pointer)
    ask its TlsLayers' listener for each handshake's certificate, and seal and open session
    tickets with the process's keys (tcpvs.tls.tickets)."""
    global aes_256_cbc
    if aes_256_cbc == NULL:
        aes_256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)
        if aes_256_cbc == NULL:
            raise MemoryError("OpenSSL: " + _openssl_error())
    SSL_CTX_set_tlsext_servername_callback(<SSL_CTX *>context, _choose_certificate)
    SSL_CTX_set_tlsext_ticket_key_evp_cb(<SSL_CTX *>context, _ticket_key)


cdef class TlsLayer:
    cdef SSL *ssl
    cdef BIO *incoming
    cdef BIO *outgoing
    cdef readonly object listener
    cdef object app
    cdef object tcp
    cdef object loop
    cdef public double deadline  # of the handshake (the listener's clock)
    cdef bint handshaking
    cdef bint connected  # the app heard connection_made
    cdef bint closing
    cdef bint paused
    cdef bint heard  # anything from the client yet

    def __cinit__(self, listener, app, uintptr_t context, loop):
        self.listener = listener
        self.app = app
        self.loop = loop
        self.ssl = SSL_new(<SSL_CTX *>context)
        self.incoming = BIO_new(BIO_s_mem())
        self.outgoing = BIO_new(BIO_s_mem())
        if self.ssl == NULL or self.incoming == NULL or self.outgoing == NULL:
            if self.incoming != NULL:
                BIO_free(self.incoming)
            if self.outgoing != NULL:
                BIO_free(self.outgoing)
            raise MemoryError("OpenSSL: " + _openssl_error())
        BIO_set_mem_eof_return(self.incoming, -1)  # empty is "wait for more", not the end
        SSL_set_bio(self.ssl, self.incoming, self.outgoing)  # the SSL owns them now
        SSL_set_accept_state(self.ssl)
        SSL_set_mode(self.ssl, SSL_MODE_RELEASE_BUFFERS)  # an idle connection keeps no buffers
        SSL_set_ex_data(self.ssl, 0, <void *>self)  # for _choose_certificate; freed with us
        self.handshaking = True

    def __dealloc__(self):
        if self.ssl != NULL:
            SSL_free(self.ssl)

    # -- the TCP transport's protocol -------------------------------------------------------

    def connection_made(self, tcp):
        self.tcp = tcp
        self.listener.handshake_started(self)

    def data_received(self, bytes data):
        if self.closing:
            return
        if not self.heard and data:
            self.heard = True
            if data[0] != 0x16 and self._plain_http(data):  # 0x16: a TLS handshake record
                return
        if BIO_write(self.incoming, PyBytes_AS_STRING(data), len(data)) != len(data):
            self._fail("cannot buffer what the client sent")
            return
        if self.handshaking:
            self._handshake()
        elif not self.paused:
            self._read()

    def eof_received(self):
        # No half-close in TLS: the client's FIN without a close_notify ends it too.
        if self.connected and not self.closing:
            self.app.eof_received()
        self.close()
        return False

    def connection_lost(self, exc):
        self.closing = True
        if self.handshaking:
            self.handshaking = False
            self.listener.handshake_ended(self)
        if self.connected:
            self.connected = False
            self.app.connection_lost(exc)

    def pause_writing(self):
        if self.connected:
            self.app.pause_writing()

    def resume_writing(self):
        if self.connected:
            self.app.resume_writing()

    cdef bint _plain_http(self, bytes first):
        """Answer a plain HTTP request with a plain 400 and close; False if it is not one."""
        answer = plain_http_answer(first)
        if answer is None:
            return False
        self.closing = True
        self.tcp.write(answer)
        self.tcp.close()
        return True

    # -- TLS --------------------------------------------------------------------------------

    cdef void _handshake(self):
        cdef int done
        ERR_clear_error()
        done = SSL_do_handshake(self.ssl)
        if done != 1 and SSL_get_error(self.ssl, done) != SSL_ERROR_WANT_READ:
            self._fail(_openssl_error())  # an alert may be waiting: _fail sends it
            return
        self._flush()
        if done != 1:
            return
        self.handshaking = False
        self.listener.handshake_ended(self)
        self.connected = True
        self.app.connection_made(self)
        if not self.closing and not self.paused:
            self._read()  # requests that came with the client's Finished

    cdef void _read(self):
        """Decrypt what has arrived and hand it to the app, until OpenSSL needs more."""
        cdef size_t got, total = 0
        cdef int ok = 1, error = 0
        ERR_clear_error()
        while total < READ_SIZE:
            ok = SSL_read_ex(self.ssl, read_buffer + total, READ_SIZE - total, &got)
            if not ok:
                break
            total += got
        if not ok:
            error = SSL_get_error(self.ssl, 0)
        if total:
            self.app.data_received(PyBytes_FromStringAndSize(read_buffer, total))
        if BIO_ctrl_pending(self.outgoing):
            self._flush()  # TLS 1.3: an answer to a KeyUpdate
        if ok:  # the buffer filled: more may be decrypted at the next turn
            if not self.closing and not self.paused:
                self.loop.call_soon(self._read_later)
        elif error == SSL_ERROR_ZERO_RETURN:  # close_notify
            ERR_clear_error()
            if self.connected and not self.closing:
                self.app.eof_received()
            self.close()
        elif error != SSL_ERROR_WANT_READ:
            self._fail(_openssl_error())
        else:
            ERR_clear_error()

    def _read_later(self):
        if not self.closing and not self.paused and not self.handshaking:
            self._read()

    cdef void _flush(self):
        """Send what OpenSSL wrote into the outgoing BIO, as one bytes object."""
        cdef size_t pending = BIO_ctrl_pending(self.outgoing)
        cdef bytes records
        if pending and not self.tcp.is_closing():
            records = PyBytes_FromStringAndSize(NULL, pending)
            BIO_read(self.outgoing, PyBytes_AS_STRING(records), pending)
            self.tcp.write(records)

    cdef void _fail(self, str why):
        """The TLS session cannot go on: send the alert OpenSSL may have written, and close."""
        ERR_clear_error()
        if self.closing:
            return
        log.debug("TLS with %s: %s", self.tcp.get_extra_info("peername"), why)
        self.closing = True
        self._flush()
        self.tcp.close()

    # -- the ClientConnection's transport ---------------------------------------------------

    def write(self, data):
        cdef size_t written
        cdef int ok
        cdef const unsigned char[:] view
        if self.closing or not data:  # (OpenSSL refuses to write nothing)
            return
        if type(data) is bytes:
            ok = SSL_write_ex(self.ssl, PyBytes_AS_STRING(data), len(data), &written)
        else:
            view = memoryview(data).cast("B")
            ok = SSL_write_ex(self.ssl, &view[0], len(view), &written)
        if not ok:
            self._fail(_openssl_error())
            return
        self._flush()

    def writelines(self, chunks):
        for chunk in chunks:
            self.write(chunk)

    def pause_reading(self):
        if not self.paused:
            self.paused = True
            if not self.tcp.is_closing():
                self.tcp.pause_reading()

    def resume_reading(self):
        if self.paused:
            self.paused = False
            if not self.tcp.is_closing():
                self.tcp.resume_reading()
            if not self.handshaking and (
                SSL_pending(self.ssl) or BIO_ctrl_pending(self.incoming)
            ):
                self.loop.call_soon(self._read_later)

    def is_reading(self):
        return not self.paused

    def is_closing(self):
        return self.closing or self.tcp is None or self.tcp.is_closing()

    def close(self):
        """Say close_notify, send what is buffered, then close the socket."""
        if self.closing:
            return
        self.closing = True
        if self.tcp is None:
            return
        if not self.handshaking:
            ERR_clear_error()
            SSL_shutdown(self.ssl)
            ERR_clear_error()
            self._flush()
        self.tcp.close()

    def abort(self):
        self.closing = True
        if self.tcp is not None:
            self.tcp.abort()

    def can_write_eof(self):
        return False

    def write_eof(self):
        raise NotImplementedError("TLS has no half-close")

    def get_write_buffer_size(self):
        return self.tcp.get_write_buffer_size()

    def set_write_buffer_limits(self, high=None, low=None):
        self.tcp.set_write_buffer_limits(high, low)

    def get_extra_info(self, name, default=None):
        if name == "tls_version":
            return SSL_get_version(self.ssl).decode("ascii")
        return self.tcp.get_extra_info(name, default)
