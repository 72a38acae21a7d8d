"""Test certificates (made by trustme for each test, never committed keys), OCSP responses
for them, and TLS clients that say which certificate they were served."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

DAY = datetime.timedelta(days=1)


@dataclass
class Issued:
    path: Path  # chain and key, one PEM file (what `tls = FILE` takes)
    fingerprint: str  # SHA-256 of the leaf certificate (DER), as tcpvs reports it
    issuer: trustme.CA | None = None  # the CA that signed it

    @property
    def ocsp_path(self) -> Path:
        """Where tcpvs looks for its OCSP response (HAProxy's convention)."""
        return Path(f"{self.path}.ocsp")

    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.path.read_bytes())


class CertAuthority:
    """A throw-away certificate authority writing PEM files under `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._intermediate: trustme.CA | None = None

    @property
    def intermediate(self) -> trustme.CA:
        """A CA signed by this one (made once): what a real site's certificate hangs from."""
        if self._intermediate is None:
            self._intermediate = self.ca.create_child_ca()
        return self._intermediate

    def issue(
        self,
        name: str,
        *hosts: str,
        key_type: trustme.KeyType = trustme.KeyType.ECDSA,
        intermediate: bool = False,
    ) -> Issued:
        """A certificate for `hosts` in `name`.pem (chain and key), signed by the root, or by
        the intermediate CA (then in the chain, as curl needs to check an OCSP staple)."""
        issuer = self.intermediate if intermediate else self.ca
        leaf = issuer.issue_cert(*hosts, key_type=key_type)
        path = self.directory / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        return Issued(path, hashlib.sha256(der).hexdigest(), issuer)

    def staple(self, issued: Issued, **options: object) -> Path:
        """Write `issued`'s OCSP response (ocsp_response's `options`) beside it, as tcpvs
        finds it: `site.pem.ocsp`."""
        issued.ocsp_path.write_bytes(ocsp_response(issued, **options))  # type: ignore[arg-type]
        return issued.ocsp_path

    def mismatched(self, name: str) -> Path:
        """A PEM file whose certificate and private key do not belong together."""
        one, other = self.ca.issue_cert("one.example"), self.ca.issue_cert("other.example")
        path = self.directory / f"{name}.pem"
        path.write_bytes(one.private_key_pem.bytes() + other.cert_chain_pems[0].bytes())
        return path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.set_alpn_protocols(["http/1.1"])
        return context


def certificate_of(ca: trustme.CA) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.cert_pem.bytes())


def ocsp_response(
    issued: Issued,
    status: str = "good",
    this_update: datetime.timedelta = -DAY,
    next_update: datetime.timedelta | None = 7 * DAY,
    serial: int | None = None,
    name_hash: bytes | None = None,
    key_hash: bytes | None = None,
) -> bytes:
    """A DER OCSP response about `issued` signed by its issuer (as a CA's responder answers):
    `status` good, revoked or unknown, this/next update relative to now (next None: none);
    `serial`, `name_hash`, `key_hash`: another certificate's CertID fields instead."""
    assert issued.issuer is not None
    issuer = certificate_of(issued.issuer)
    key = serialization.load_pem_private_key(issued.issuer.private_key_pem.bytes(), None)
    leaf = issued.leaf()
    cert_id = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    revoked = status == "revoked"
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=name_hash or cert_id.issuer_name_hash,
        issuer_key_hash=key_hash or cert_id.issuer_key_hash,
        serial_number=leaf.serial_number if serial is None else serial,
        algorithm=hashes.SHA1(),
        cert_status=getattr(ocsp.OCSPCertStatus, status.upper()),
        this_update=now + this_update,
        next_update=None if next_update is None else now + next_update,
        revocation_time=now - DAY if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    response = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)


def served_fingerprint(port: int, server_name: str | None, context: ssl.SSLContext) -> str:
    """SHA-256 of the certificate tcpvs serves to a client asking for `server_name` (None:
    no SNI); the chain is verified, not the name (which one came is the question)."""
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


class HttpsConnection(http.client.HTTPSConnection):
    """http.client over TLS to 127.0.0.1:`port`, sending SNI and Host `server_name`."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(server_name, port, context=context, timeout=10)
        self.port_number = port

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port_number), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def s_client(port: int, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`openssl s_client -connect 127.0.0.1:PORT ARGS` (bounded), its output as text."""
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
