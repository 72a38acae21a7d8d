"""Audit a tcpvs TLS service with Debian's testssl.sh (apt-get install testssl.sh) and say
whether any finding is rated HIGH or CRITICAL (the issue's bar; docs/tls.md has the result).

    .venv/bin/python -m bench.testssl              # ECDSA P-256 certificate
    .venv/bin/python -m bench.testssl --key rsa    # RSA 2048

The certificate is made here, as a careful operator's would be: 90 days, a CRL and an OCSP
address, issued by a CA made here too and handed to testssl.sh (--add-ca), and an OCSP
response from that CA beside it (site.pem.ocsp, stapled); so what testssl.sh judges is
tcpvs's TLS, not a test certificate's shortcomings. The service runs in this process
(tcpvs as a library) on 127.0.0.1 with a small HTTP server behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from bench.procs import free_port
from tcpvs.switch import Switch

NAME = "site.example"
REVOCATION = "http://127.0.0.1:9/"  # present, as testssl.sh asks; never fetched (no --phone-out)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


def _key(kind: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_certificates(directory: Path, kind: str) -> tuple[Path, Path]:
    """(the CA's PEM, the site's chain-and-key PEM); the site's OCSP response beside it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tcpvs bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = _key(kind)
    site = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(REVOCATION)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(REVOCATION),
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, site_file = directory / "ca.pem", directory / "site.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    site_file.write_bytes(key_pem + site.public_bytes(pem) + ca.public_bytes(pem))
    # What the CA's responder would answer (`openssl ocsp ... -respout site.pem.ocsp`): good
    # for a week, signed by the CA itself.
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=site,
            issuer=ca,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - datetime.timedelta(hours=1),
            next_update=now + datetime.timedelta(days=7),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
        .sign(ca_key, hashes.SHA256())
    )
    Path(f"{site_file}.ocsp").write_bytes(response.public_bytes(serialization.Encoding.DER))
    return ca_file, site_file


class Ok(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


async def audit(kind: str, directory: Path) -> list[dict[str, str]]:
    ca_file, site_file = make_certificates(directory, kind)
    loop = asyncio.get_running_loop()
    backend = await loop.create_server(Ok, "127.0.0.1", 0)
    backend_port = backend.sockets[0].getsockname()[1]
    port = free_port()
    switch = Switch()
    await switch.add_service("site", listen=f"127.0.0.1:{port}", tls=[str(site_file)])
    await switch.add_server("site", f"127.0.0.1:{backend_port}")
    await switch.start()
    report = directory / "testssl.json"
    argv = ["testssl", "--quiet", "--color", "0", "--add-ca", str(ca_file), "--ip", "127.0.0.1"]
    argv += ["--jsonfile", str(report), f"https://{NAME}:{port}/"]
    try:
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, timeout=900)
    finally:
        await switch.close()
        backend.close()
    if not report.exists():
        sys.exit(f"testssl.sh wrote no report: {done.stderr.decode(errors='replace')[-500:]}")
    findings: list[dict[str, str]] = json.loads(report.read_text())
    return findings


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.testssl", description=__doc__.split("\n")[0])
    ap.add_argument("--key", choices=("ecdsa", "rsa"), default="ecdsa")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        findings = asyncio.run(audit(args.key, Path(tmp)))
    rated = [f for f in findings if f["severity"] not in ("OK", "INFO", "DEBUG")]
    for finding in rated:
        print(f"{finding['severity']:<9} {finding['id']:<28} {finding['finding']}")
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("CRITICAL", "HIGH")}
    print(f"{len(findings)} findings; CRITICAL {counts['CRITICAL']}, HIGH {counts['HIGH']}")
    sys.exit(1 if any(counts.values()) else 0)


if __name__ == "__main__":
    main()
