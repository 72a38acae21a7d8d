"""Test certificates (made by trustme for each test, never committed keys) and TLS clients that
say which certificate they were served."""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Issued:
    path: Path  # chain and key, one PEM file (what `tls = FILE` takes)
    fingerprint: str  # SHA-256 of the leaf certificate (DER), as tcpvs reports it


class CertAuthority:
    """A throw-away certificate authority writing PEM files under `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def issue(
        self, name: str, *hosts: str, key_type: trustme.KeyType = trustme.KeyType.ECDSA
    ) -> Issued:
        leaf = self.ca.issue_cert(*hosts, key_type=key_type)
        path = self.directory / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        return Issued(path, hashlib.sha256(der).hexdigest())

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
