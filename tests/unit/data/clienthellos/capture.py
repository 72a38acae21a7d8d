"""Capture the real ClientHellos that tests/unit/test_tls_clienthello.py parses.

Re-run (from the repository root; needs `openssl` and `curl` on PATH, talks to 127.0.0.1 only):

    .venv/bin/python tests/unit/data/clienthellos/capture.py

Each client connects to a listener here that never answers: what the client sent until it
waited for a ServerHello is its ClientHello, written to <name>.bin next to this script. A
client's hello changes with its version and build, and every run differs (random, key shares):
after a re-run, update the expectations in the test. pytest does not collect this file (its name
does not start with test_), and the unit tests never run it: they may open no sockets.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
QUIET = 0.5  # seconds without bytes: the client is waiting for the ServerHello


def capture(name: str, client: Callable[[int], object]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=client, args=(port,), daemon=True)
        thread.start()
        listener.settimeout(10)
        conn, _ = listener.accept()
        chunks = []
        with conn:
            conn.settimeout(QUIET)
            try:
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
            except TimeoutError:
                pass
        thread.join(10)
    data = b"".join(chunks)
    with open(os.path.join(HERE, name + ".bin"), "wb") as out:
        out.write(data)
    print(f"{name}.bin: {len(data)} bytes", file=sys.stderr)


def run(*argv: str) -> Callable[[int], object]:
    def client(port: int) -> object:
        args = [arg.replace("PORT", str(port)) for arg in argv]
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)

    return client


def python(server_name: str | None, alpn: list[str] | None) -> Callable[[int], object]:
    def client(port: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if alpn:
            context.set_alpn_protocols(alpn)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                context.wrap_socket(sock, server_hostname=server_name)
            except OSError:  # the listener closes without answering
                pass

    return client


def main() -> None:
    connect = "127.0.0.1:PORT"
    capture(
        "openssl", run("openssl", "s_client", "-connect", connect, "-servername", "Openssl.Example")
    )
    capture(
        "openssl_tls12",
        run("openssl", "s_client", "-tls1_2", "-connect", connect, "-servername", "tls12.example"),
    )
    capture(
        "curl",
        run(
            "curl", "-sk", "--max-time", "5", "--resolve", "curl.example:PORT:127.0.0.1",
            "https://curl.example:PORT/",
        ),
    )  # fmt: skip
    capture("python_sni_alpn", python("python.example", ["h2", "http/1.1"]))
    capture("python_no_sni", python(None, None))


if __name__ == "__main__":
    main()
