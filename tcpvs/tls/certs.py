"""A TLS service's certificates: each loaded from one PEM file (chain and key), the names it
serves read from it, and the choice of one for a client's SNI.

Loading checks everything that can fail at handshake time, so that a bad file is an error of
the config line that names it and never of a client: readable, a certificate chain and a
private key that belong together (OpenSSL's own check, through ssl.SSLContext), names to
serve. Each certificate gets its own SSLContext with the service's settings
(tcpvs.tls.settings); the SNI callback hands the matching one to each new handshake. An OCSP
response beside the file (`site.pem.ocsp`) is read, checked and stapled with it
(tcpvs.tls.ocsp).
"""

from __future__ import annotations

import hashlib
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tcpvs.tls.ocsp import Staple, StapleError, load_staple
from tcpvs.tls.settings import DEFAULT_TLS_MIN, TLS_VERSIONS, server_context


class CertificateError(ValueError):
    """A certificate file that cannot be served; str() says which file and why."""


@dataclass(frozen=True, eq=False)
class Certificate:
    """One certificate file as loaded: its names (SAN DNS names, else the subject's CN),
    its SHA-256 fingerprint (of the leaf, DER), a server context serving it and the OCSP
    response stapled with it (None: no `.ocsp` file beside it)."""

    path: str
    names: tuple[str, ...]
    fingerprint: str
    context: ssl.SSLContext
    staple: Staple | None = None

    def matches(self, server_name: str) -> bool:
        """Whether `server_name` (lower-case) is one of its names; `*.example.com` matches one
        label in front of example.com (RFC 6125 6.4.3: not example.com, not a.b.example.com)."""
        for name in self.names:
            if name == server_name:
                return True
            if name.startswith("*."):
                head, dot, rest = server_name.partition(".")
                if dot and head and rest == name[2:]:
                    return True
        return False


def load_certificate(path: str) -> Certificate:
    """Load the PEM file at `path` (an absolute path: tcpvsd's working directory is not the
    operator's)."""
    if not os.path.isabs(path):
        raise CertificateError(f"{path}: the path must be absolute")
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError(f"{path}: no PEM certificate in it") from None
    if b"PRIVATE KEY-----" not in pem:
        raise CertificateError(f"{path}: no private key in it (certificate and key go in one file)")
    context = server_context()
    try:
        context.load_cert_chain(path)
    except ssl.SSLError as exc:
        raise CertificateError(f"{path}: {_ssl_reason(exc)}") from None
    names = _names(leaf)
    if not names:
        raise CertificateError(f"{path}: the certificate names no host (no DNS SAN or CN)")
    digest = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    try:
        staple = load_staple(path, pem, leaf, context)
    except StapleError as exc:
        raise CertificateError(str(exc)) from None
    return Certificate(path, names, digest, context, staple)


def _ssl_reason(exc: ssl.SSLError) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return "the private key does not match the certificate"
    return (exc.reason or str(exc)).lower().replace("_", " ")


def _names(leaf: x509.Certificate) -> tuple[str, ...]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [
            str(attr.value) for attr in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return tuple(dict.fromkeys(name.lower().rstrip(".") for name in names))


# Names chosen for are remembered (a dict lookup per handshake instead of a scan); the names
# come from clients, so at most this many.
MAX_REMEMBERED = 4096


class CertStore:
    """The certificates of one service, in their config order; the first serves clients that
    send no SNI or a name none of them has (as nginx's default server and HAProxy's first
    crt do)."""

    def __init__(self, certificates: list[Certificate], tls_min: str = DEFAULT_TLS_MIN) -> None:
        assert certificates, "a TLS service has at least one certificate"
        self.certificates = certificates
        self.tls_min = tls_min
        for cert in certificates:
            cert.context.minimum_version = TLS_VERSIONS[tls_min]
        self._chosen: dict[str | None, Certificate] = {}  # per name seen, bounded below

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(cert.path for cert in self.certificates)

    def choose(self, server_name: str | None) -> Certificate:
        """The certificate to serve to a client that asked for `server_name` (None: no SNI)."""
        chosen = self._chosen.get(server_name)
        if chosen is None:
            chosen = self.certificates[0]
            if server_name is not None:
                name = server_name.lower().rstrip(".")
                chosen = next((c for c in self.certificates if c.matches(name)), chosen)
                if len(self._chosen) >= MAX_REMEMBERED:  # names come from clients: bounded
                    self._chosen.clear()
            self._chosen[server_name] = chosen
        return chosen
