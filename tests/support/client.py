"""Real clients for the end-to-end tests: a raw socket that reads responses with http.client
(so several pipelined responses can be read from one connection), and curl."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import threading


class _Unclosable:
    """http.client closes its file after each response; the next response needs it open."""

    def __init__(self, file) -> None:
        self._file = file

    def __getattr__(self, name):
        return getattr(self._file, name)

    def close(self) -> None:
        pass


class RawClient:
    """One TCP connection to the switch; send any bytes, read responses in order."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def makefile(self, *args, **kwargs):  # lets http.client read from our shared buffer
        return _Unclosable(self._file)

    def response(self, method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
        resp = http.client.HTTPResponse(self, method=method)  # type: ignore[arg-type]
        resp.begin()
        return resp.status, resp.headers, resp.read()

    def read_all(self) -> bytes:
        """Everything until the switch closes the connection."""
        chunks = []
        while chunk := self._file.read1(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get(
    port: int,
    path: str,
    headers: dict | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection with http.client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw_exchange(port: int, payload: bytes) -> tuple[bytes, bytes]:
    """Talk to a raw echo service (tests/support/backend.py --raw): read its banner line, send
    `payload` while reading (so neither side's buffers fill), half-close, read to the end.
    Returns (banner, everything after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        banner = b""
        while not banner.endswith(b"\n"):
            banner += sock.recv(1)

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        rest = bytearray()
        while chunk := sock.recv(1 << 20):
            rest += chunk
        sender.join(10)
        return banner, bytes(rest)


def curl(*args: str) -> subprocess.CompletedProcess:
    """Run the real curl (installed by .ci/run)."""
    exe = shutil.which("curl")
    assert exe, "curl is not installed (bash .ci/run installs it)"
    return subprocess.run(
        [exe, "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20
    )
