"""tcpvsd's memory under TLS handshakes that never finish (docs/tls.md, "Clients that do not
speak TLS"): rounds of connections to a TLS service that open and say nothing (or, with
`--hello`, the start of a ClientHello), cut at `client_timeout = 1`, and tcpvsd's resident
memory after rounds.

    .venv/bin/python -m bench.tlsmemory                 # about 40 s; --rounds, --per-round
    TCPVS_PURE_PYTHON=1 .venv/bin/python -m bench.tlsmemory    # the event loop's TLS layer
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

from tests.support.procs import free_port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--per-round", type=int, default=500, help="silent connections a round")
    ap.add_argument("--hello", action="store_true", help="send a ClientHello's first bytes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pem = work / "site.pem"
        trustme.CA().issue_cert("site.test").private_key_and_cert_chain_pem.write_to_path(str(pem))
        port = free_port()
        (work / "tls.conf").write_text(
            "Virtual site {\n"
            f"    listen = 127.0.0.1:{port}\n    scheduler = http\n    tls = {pem}\n"
            "    client_timeout = 1\n    server = 127.0.0.1:9 1\n}\n"
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "tcpvs.daemon", "--socket", str(work / "sock")]
            + ["-f", str(work / "tls.conf")],
            stderr=subprocess.DEVNULL,
        )
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            engine = "pure" if os.environ.get("TCPVS_PURE_PYTHON") else "compiled"
            print(f"engine: {engine}, {'a ClientHello begun' if args.hello else 'silent'}")
            print(f"start: {rss_mib(daemon.pid):.1f} MiB")
            for round_ in range(1, args.rounds + 1):
                silent = [
                    socket.create_connection(("127.0.0.1", port), timeout=10)
                    for _ in range(args.per_round)
                ]
                if args.hello:
                    for sock in silent:
                        sock.sendall(b"\x16\x03\x01\x02\x00\x01")
                time.sleep(2.0)  # cut at client_timeout by then
                for sock in silent:
                    sock.close()
                if round_ % 5 == 0 or round_ == 1:
                    total = round_ * args.per_round
                    print(f"after {total} connections: {rss_mib(daemon.pid):.1f} MiB")
        finally:
            daemon.terminate()
            daemon.wait(10)


if __name__ == "__main__":
    main()
