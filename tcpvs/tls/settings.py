"""How tcpvs speaks TLS to clients: the defaults of a careful operator, in one place.

Mozilla's "intermediate" configuration (TLS 1.2 and 1.3, forward-secret AEAD ciphers only),
in the server's order (Mozilla leaves it to the client, every cipher on the list being strong;
testssl.sh rates "no cipher order" HIGH, and the order only ever picks a strong one), no
compression (CRIME), no
renegotiation (a client-triggered CPU cost and CVE-2009-3555), ALPN `http/1.1` only (what tcpvs
speaks), session tickets on (keys shared by the workers and rotated: tcpvs.tls.tickets).
"""

from __future__ import annotations

import ssl

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
DEFAULT_TLS_MIN = "1.2"
# https://ssl-config.mozilla.org/guidelines/5.7.json, "intermediate" (TLS 1.2 ciphers; TLS 1.3
# suites are OpenSSL's defaults, all three on that list).
INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)
ALPN = ["http/1.1"]


def server_context(tls_min: str = DEFAULT_TLS_MIN) -> ssl.SSLContext:
    """A server-side context with tcpvs's defaults and `tls_min` ("1.2" or "1.3") as the
    lowest version; certificates are loaded by the caller."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls_min]
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(ALPN)
    return context
