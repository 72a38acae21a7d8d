"""One handshake client of the TLS passthrough bench (bench/tls.py): new TLS connections with a
server name (SNI), one after another, each a full handshake, between two wall-clock times.

`openssl s_time` sends no SNI (OpenSSL 3.0: not with a host name in -connect either), and SNI is
what a passthrough routes by, so this stands in for it with the same behaviour: a fresh
session each time, no CA loaded (no verification, as s_time and wrk), no ALPN, no close_notify
(the socket is closed once the handshake is done). The names are used in turn.

    python bench/sniclient.py PORT START STOP -tls1_3 NAME [NAME ...]

prints `N connections in S real seconds`, then `resumed R` and `cpu SECONDS` (this process,
from START to the end). Standard library only: it starts fast, several at once.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time

VERSIONS = {"-tls1_3": ssl.TLSVersion.TLSv1_3, "-tls1_2": ssl.TLSVersion.TLSv1_2}


def main(argv: list[str]) -> int:
    port, start, stop, version, *names = argv
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = VERSIONS[version]
    address, begin, end = ("127.0.0.1", int(port)), float(start), float(stop)
    if (wait := begin - time.time()) > 0:
        time.sleep(wait)
    cpu0, t0 = time.process_time(), time.monotonic()
    count = resumed = 0
    while time.time() < end:
        sock = socket.create_connection(address)  # blocking: the bench kills a stuck client
        with context.wrap_socket(sock, server_hostname=names[count % len(names)]) as tls:
            resumed += bool(tls.session_reused)
        count += 1
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(f"{count} connections in {wall:.3f} real seconds\nresumed {resumed}\ncpu {cpu:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
