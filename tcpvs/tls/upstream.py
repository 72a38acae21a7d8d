"""TLS to real servers (re-encryption): the client context a service reaches its `tls`
servers with. Verification is on unless the operator says `tls_verify = none`: against the
system's CA store, or the service's `tls_ca` file, and the server's name (its `tls NAME`, else
the host it was written with) checked against its certificate, as curl and nginx's
`proxy_ssl_verify on` do."""

from __future__ import annotations

import os
import ssl

from tcpvs.tls.certs import CertificateError
from tcpvs.tls.settings import ALPN, INTERMEDIATE_CIPHERS


def upstream_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The context for a service's TLS servers; CertificateError for an unusable CA file."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    context.set_alpn_protocols(ALPN)
    if ca_file is not None:
        if not os.path.isabs(ca_file):
            raise CertificateError(f"{ca_file}: the path must be absolute")
        try:
            context.load_verify_locations(cafile=ca_file)
        except FileNotFoundError as exc:
            raise CertificateError(f"cannot read {ca_file}: {exc.strerror}") from None
        except (OSError, ssl.SSLError) as exc:
            raise CertificateError(f"{ca_file}: no CA certificate in it ({exc})") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class UpstreamTls:
    """A service's settings for its TLS servers, and the context made from them."""

    def __init__(self, ca_file: str | None = None, verify: bool = True) -> None:
        self.ca_file = ca_file
        self.verify = verify
        self.context = upstream_context(ca_file, verify)
