"""OCSP stapling, HAProxy's way: a DER OCSP response in `<certificate file>.ocsp`, next to the
PEM file a `tls = ` line names, is sent to every client that asks for certificate status
(the status_request extension) and is served that certificate.

The response is read and checked with the certificate (so a bad one is an error of the config
line, tcpvs.tls.certs): a successful response, about this very certificate (its serial number
and its issuer's name hash, and the issuer's key hash when the issuer is in the PEM file). A
response past its nextUpdate is kept but not sent (clients would refuse it): the handshake
compares the clock with one float. The responder's signature is the client's to verify.

Python's `ssl` module has no server-side OCSP API: the status callback is set on each
certificate's SSL_CTX through ctypes (tcpvs.tls.openssl). The listener's SNI callback switches
every handshake to its certificate's context, and OpenSSL asks that context's callback.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
import math
import ssl
import time
import weakref
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from tcpvs.tls import openssl

log = logging.getLogger("tcpvsd")

SUFFIX = ".ocsp"  # HAProxy's: site.pem -> site.pem.ocsp
# A thisUpdate further ahead than this is refused (the clocks disagree: clients would refuse
# it too). OpenSSL's clients allow 5 minutes (curl's OCSP_check_validity maxsec 300).
CLOCK_SKEW = 300.0


class StapleError(ValueError):
    """A response that cannot be stapled for a certificate; str() says why."""


@dataclass(frozen=True, eq=False)
class Staple:
    """An OCSP response checked against its certificate, ready to be sent."""

    der: bytes  # the OCSPResponse, as sent
    status: str  # the certificate's: "good", "revoked" or "unknown"
    this_update: float  # POSIX time
    next_update: float  # POSIX time; inf when the response has no nextUpdate

    def fresh(self, now: float) -> bool:
        """Whether it may be sent at `now` (time.time()): before its nextUpdate."""
        return now < self.next_update


def staple_path(cert_path: str) -> str:
    return cert_path + SUFFIX


def parse_staple(
    der: bytes,
    leaf: x509.Certificate,
    issuer: x509.Certificate | None = None,
    now: float | None = None,
) -> Staple:
    """Check `der` (a DER OCSPResponse) for `leaf`, issued by `issuer` when it is known (its
    key hash is then checked too); StapleError says why it cannot be stapled."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise StapleError("not a DER-encoded OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        name = response.response_status.name.lower()
        raise StapleError(f"the OCSP response status is {name}, not successful")
    try:
        singles = list(response.responses)
    except ValueError as exc:
        raise StapleError(f"the OCSP response cannot be read: {exc}") from None
    single = _about(singles, leaf, issuer)
    this_update = single.this_update_utc.timestamp()
    if this_update > (time.time() if now is None else now) + CLOCK_SKEW:
        when = _utc(this_update)
        raise StapleError(f"the OCSP response is not valid before {when} (its thisUpdate)")
    next_update = single.next_update_utc
    return Staple(
        der,
        single.certificate_status.name.lower(),
        this_update,
        math.inf if next_update is None else next_update.timestamp(),
    )


def _about(
    singles: list[ocsp.OCSPSingleResponse],
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
) -> ocsp.OCSPSingleResponse:
    """The single response about `leaf`, else StapleError."""
    other_issuer = ""
    for single in singles:
        if single.serial_number != leaf.serial_number:
            continue
        name_hash, key_hash = _issuer_hashes(leaf, issuer, single.hash_algorithm)
        if name_hash is not None and single.issuer_name_hash != name_hash:
            other_issuer = "issuer name hash"
        elif key_hash is not None and single.issuer_key_hash != key_hash:
            other_issuer = "issuer key hash"
        else:
            return single
    if other_issuer:
        raise StapleError(f"the OCSP response is for another issuer ({other_issuer})")
    given = ", ".join(f"{single.serial_number:#x}" for single in singles) or "none"
    raise StapleError(
        f"the OCSP response is for another certificate (serial {given}, "
        f"the certificate's is {leaf.serial_number:#x})"
    )


def _issuer_hashes(
    leaf: x509.Certificate, issuer: x509.Certificate | None, algorithm: hashes.HashAlgorithm
) -> tuple[bytes | None, bytes | None]:
    """(issuer name hash, issuer key hash) of `leaf`'s CertID with `algorithm`; None for what
    cannot be computed (the key hash without the issuer, an algorithm OpenSSL would not use)."""
    if issuer is not None:
        try:
            request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
        except (ValueError, TypeError):
            pass
        else:
            return request.issuer_name_hash, request.issuer_key_hash
    try:
        digest = hashes.Hash(algorithm)
    except UnsupportedAlgorithm:  # not one this cryptography computes: not checked
        return None, None
    digest.update(leaf.issuer.public_bytes())
    return digest.finalize(), None


def issuer_of(leaf: x509.Certificate, chain: list[x509.Certificate]) -> x509.Certificate | None:
    """The certificate of `chain` that issued `leaf` (by name and signature), if any."""
    for cert in chain:
        if cert.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return cert
    return None


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def read_staple(cert_path: str, pem: bytes, leaf: x509.Certificate) -> Staple | None:
    """The staple beside the certificate file `cert_path` (whose contents are `pem`, first
    certificate `leaf`), checked; None when there is no such file. StapleError says which
    file and why when it cannot be used."""
    path = staple_path(cert_path)
    try:
        with open(path, "rb") as handle:
            der = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StapleError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        chain = x509.load_pem_x509_certificates(pem)[1:]
    except ValueError:
        chain = []
    try:
        return parse_staple(der, leaf, issuer_of(leaf, chain))
    except StapleError as exc:
        raise StapleError(f"{path}: {exc}") from None


def load_staple(
    cert_path: str, pem: bytes, leaf: x509.Certificate, context: ssl.SSLContext
) -> Staple | None:
    """read_staple, and the staple installed on `context` (the certificate's own). Without
    ctypes hooks, one warning (per process) and no stapling."""
    staple = read_staple(cert_path, pem, leaf)
    if staple is None:
        return None
    if not staple.fresh(time.time()):
        _warn_expired(staple_path(cert_path), staple)
    try:
        install(context, staple)
    except openssl.OpenSSLUnavailable as exc:
        global _warned
        if not _warned:
            _warned = True
            log.warning("OCSP stapling is off: %s", exc)
    return staple


_warned = False  # the warning that stapling is off, given once
# When each expired file was last reported: once per load, though a load may parse the
# same file more than once in a process (tcpvsd's master copies the table it loaded).
_EXPIRED_REPORTED: dict[str, float] = {}
REPORT_AGAIN_AFTER = 10.0


def _warn_expired(path: str, staple: Staple) -> None:
    now = time.monotonic()
    if now - _EXPIRED_REPORTED.get(path, -math.inf) < REPORT_AGAIN_AFTER:
        return
    _EXPIRED_REPORTED[path] = now
    log.warning(
        "%s: the OCSP response expired at %s (its nextUpdate): not stapled until refreshed",
        path,
        _utc(staple.next_update),
    )


# -- handshakes -------------------------------------------------------------------------------

# SSL_CTX address -> its staple. An entry goes with its context (weakref.finalize, run before
# the context frees its SSL_CTX, so before the address can be another context's).
_STAPLES: dict[int, Staple] = {}


def staple_for(ctx_pointer: int | None, now: float) -> bytes | None:
    """What to send for a handshake on the SSL_CTX at `ctx_pointer` at `now`: the staple's
    bytes, or None (none installed, or past its nextUpdate)."""
    staple = _STAPLES.get(ctx_pointer or 0)
    if staple is None or not now < staple.next_update:
        return None
    return staple.der


_WHERE = __file__.encode()


def _on_status(ssl_pointer: int | None, _arg: int | None) -> int:
    """OpenSSL's status callback (server side): hand the staple to the handshake. Never
    raises: any trouble is no staple, never a failed handshake."""
    try:
        lib = openssl.library()
        der = staple_for(lib.SSL_get_SSL_CTX(ssl_pointer), time.time())
        if der is None:
            return openssl.SSL_TLSEXT_ERR_NOACK
        # OpenSSL frees the response with the SSL: it must come from its own allocator.
        buffer = lib.CRYPTO_malloc(len(der), _WHERE, 0)
        if not buffer:
            return openssl.SSL_TLSEXT_ERR_NOACK
        ctypes.memmove(buffer, der, len(der))
        lib.SSL_ctrl(
            ssl_pointer, openssl.SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP, len(der), buffer
        )
        return openssl.SSL_TLSEXT_ERR_OK
    except BaseException:  # nothing may escape into OpenSSL
        return openssl.SSL_TLSEXT_ERR_NOACK


# The C function pointer OpenSSL calls: alive as long as the module (every context's callback).
_CALLBACK = openssl.STATUS_CALLBACK(_on_status)


def install(context: ssl.SSLContext, staple: Staple) -> None:
    """Staple `staple` on the handshakes of `context` (a certificate's own context);
    openssl.OpenSSLUnavailable when the hook cannot be set."""
    lib = openssl.library()
    pointer = openssl.ssl_ctx_pointer(context)
    _STAPLES[pointer] = staple
    weakref.finalize(context, _forget, pointer, staple)
    callback = ctypes.cast(_CALLBACK, ctypes.c_void_p)
    if lib.SSL_CTX_callback_ctrl(pointer, openssl.SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB, callback) != 1:
        _forget(pointer, staple)
        raise openssl.OpenSSLUnavailable("SSL_CTX_set_tlsext_status_cb failed")


def _forget(pointer: int, staple: Staple) -> None:
    if _STAPLES.get(pointer) is staple:
        del _STAPLES[pointer]
