"""The few OpenSSL calls Python's `ssl` module does not offer, reached through ctypes.

tcpvs needs two server-side hooks that CPython 3.11 does not expose: the session ticket key
callback (keys shared by workers and rotated, tcpvs.tls.tickets) and the OCSP status
callback (stapling, tcpvs.tls.ocsp). Both are set on the `SSL_CTX` behind an
`ssl.SSLContext`, found where CPython keeps it (the first field after the object header of
`_ssl._SSLContext`) and checked before use: the options OpenSSL reports for that pointer
must be the context's own, else the hooks are refused (OpenSSLUnavailable) and tcpvs goes on
without them. The library is the one CPython's `_ssl` module is linked with (dlsym through
`_ssl`'s handle), never another copy.
"""

from __future__ import annotations

import _ssl
import ctypes
import ssl
import sys


class OpenSSLUnavailable(RuntimeError):
    """The hooks cannot be set on this interpreter's ssl module; str() says why."""


# ssl.h / tls1.h
SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB = 63
SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP = 71
SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB = 72
SSL_TLSEXT_ERR_OK = 0
SSL_TLSEXT_ERR_NOACK = 3
EVP_MAX_IV_LENGTH = 16

_void_p = ctypes.c_void_p
# int (*)(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
#         HMAC_CTX *hctx, int enc)
TICKET_KEY_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, _void_p, _void_p, _void_p, _void_p, _void_p, ctypes.c_int
)
# int (*)(SSL *s, void *arg)
STATUS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, _void_p, _void_p)


def _library() -> ctypes.CDLL:
    if sys.implementation.name != "cpython":
        raise OpenSSLUnavailable(f"{sys.implementation.name}: not CPython")
    library = ctypes.CDLL(_ssl.__file__)
    functions: list[tuple[str, object, list[object]]] = [
        ("SSL_CTX_get_options", ctypes.c_uint64, [_void_p]),
        ("SSL_CTX_callback_ctrl", ctypes.c_long, [_void_p, ctypes.c_int, _void_p]),
        ("SSL_ctrl", ctypes.c_long, [_void_p, ctypes.c_int, ctypes.c_long, _void_p]),
        ("SSL_get_SSL_CTX", _void_p, [_void_p]),
        ("EVP_CIPHER_fetch", _void_p, [_void_p, ctypes.c_char_p, ctypes.c_char_p]),
        ("EVP_MD_fetch", _void_p, [_void_p, ctypes.c_char_p, ctypes.c_char_p]),
        ("EVP_EncryptInit_ex", ctypes.c_int, [_void_p, _void_p, _void_p, _void_p, _void_p]),
        ("EVP_DecryptInit_ex", ctypes.c_int, [_void_p, _void_p, _void_p, _void_p, _void_p]),
        ("HMAC_Init_ex", ctypes.c_int, [_void_p, _void_p, ctypes.c_int, _void_p, _void_p]),
        ("RAND_bytes", ctypes.c_int, [_void_p, ctypes.c_int]),
        ("CRYPTO_malloc", _void_p, [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int]),
    ]
    try:
        for name, restype, argtypes in functions:
            function = getattr(library, name)
            function.restype = restype
            function.argtypes = argtypes
    except AttributeError as exc:
        raise OpenSSLUnavailable(f"OpenSSL function missing: {exc}") from None
    return library


try:
    LIBRARY: ctypes.CDLL | None = _library()
    WHY_NOT = ""
except (OSError, OpenSSLUnavailable) as exc:
    LIBRARY, WHY_NOT = None, str(exc)


def library() -> ctypes.CDLL:
    """The OpenSSL functions above, or OpenSSLUnavailable."""
    if LIBRARY is None:
        raise OpenSSLUnavailable(WHY_NOT)
    return LIBRARY


def ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    """The address of the SSL_CTX behind `context`, checked (OpenSSLUnavailable if it does
    not look like one)."""
    lib = library()
    # PySSLContext: PyObject_HEAD, then SSL_CTX *ctx (Modules/_ssl.c, every CPython 3).
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or lib.SSL_CTX_get_options(pointer) != context.options:
        raise OpenSSLUnavailable("cannot find the SSL_CTX of an ssl.SSLContext")
    return pointer
