"""What sending 1 MiB over TLS costs the sender, by path (docs/benchmarks.md, "TLS").

uvloop's TLS layer (asyncio's design) keeps OpenSSL away from the socket: SSLObject.write()
encrypts into an outgoing memory BIO, `outgoing.read()` copies the records out as a bytes
object, and the transport send()s them. HAProxy lets OpenSSL write the records to the socket
itself (a BIO whose write is send()). This times each part on the sender's thread
(time.thread_time: user + kernel CPU of that thread), over TCP on 127.0.0.1, with tcpvs's
server context (tcpvs.tls.settings) and an ECDSA P-256 certificate (trustme); the receiving
thread only drains bytes. As in the bench, sender and receiver run on different CPUs (the
sender on CPU1, the receiver on CPU0 by default: each send() wakes a reader on the other CPU).

    .venv/bin/python -m bench.tlsbio             # about 7 s; --json for bench/tls.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable

import trustme

from tcpvs.tls.settings import server_context

MIB = 1 << 20
CHUNK = 256 * 1024  # what uvloop reads from a socket at a time (UV_STREAM_RECV_BUF_SIZE)
NAME = "bench.tcpvs.test"
READER_CPU: int | None = None  # the receiving threads' CPU (main() sets it)


def pin(cpu: int | None) -> None:
    """Pin the calling thread (Linux: pid 0 is the calling thread, not the process)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = server_context()
    ca.issue_cert(NAME).configure_cert(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    return server, client


def per_mib(step: Callable[[], None], mib_per_step: float, seconds: float) -> float:
    """CPU µs of this thread per MiB: step() repeated for about `seconds`, best of 3."""
    best = float("inf")
    for _ in range(3):
        steps, start, wall = 0, time.thread_time(), time.monotonic()
        while time.monotonic() - wall < seconds / 3:
            step()
            steps += 1
        best = min(best, (time.thread_time() - start) / (steps * mib_per_step) * 1e6)
    return best


def memory_bio(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, seconds: float) -> float:
    """SSLObject.write(256 KiB) + outgoing.read(): uvloop's path up to the socket."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=NAME)
    done: set[str] = set()
    for _ in range(10):
        for name, obj in (("client", client), ("server", server)):
            try:
                obj.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if len(done) == 2:
            break
    else:
        raise RuntimeError("memory-BIO handshake did not finish")
    s_out.read()
    chunk = b"x" * CHUNK

    def step() -> None:
        server.write(chunk)
        s_out.read()

    return per_mib(step, CHUNK / MIB, seconds)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
    return server, client


def drain(sock: socket.socket) -> None:
    pin(READER_CPU)
    buf = bytearray(CHUNK)
    with sock:
        while sock.recv_into(buf):
            pass


def plain_send(seconds: float) -> float:
    """send() of 256 KiB on TCP: the kernel's copy, paid by both paths for the records."""
    server, client = tcp_pair()
    reader = threading.Thread(target=drain, args=(client,))
    reader.start()
    return timed_sendall(server, reader, CHUNK, seconds)


def timed_sendall(
    server: socket.socket, reader: threading.Thread, size: int, seconds: float
) -> float:
    """CPU per MiB of `server.sendall(size bytes)` while `reader` (started) drains the other
    end; both are closed and joined after."""
    chunk = b"x" * size
    try:
        return per_mib(lambda: server.sendall(chunk), size / MIB, seconds)
    finally:
        server.close()
        reader.join(10)


def socket_bio(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, seconds: float, size: int = CHUNK
) -> float:
    """SSLSocket.sendall(size): OpenSSL encrypts and send()s each record itself."""
    raw_server, raw_client = tcp_pair()

    def client_side() -> None:
        pin(READER_CPU)
        tls = client_ctx.wrap_socket(raw_client, server_hostname=NAME)
        drain(socket.socket(fileno=tls.detach()))  # the records, undecrypted

    reader = threading.Thread(target=client_side)
    reader.start()
    server = server_ctx.wrap_socket(raw_server, server_side=True)
    return timed_sendall(server, reader, size, seconds)


def copy_bytes(seconds: float) -> float:
    """One user-space copy of 1 MiB into a new bytes object (memmove + allocation)."""
    source = memoryview(bytearray(MIB))

    def step() -> None:
        source.tobytes()

    return per_mib(step, 1.0, seconds)


def openssl_speed(seconds: int = 1) -> float | None:
    """AES-256-GCM (TLS 1.3's suite here) on 16 KiB blocks, encryption alone, µs per MiB."""
    argv = ["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384", "-seconds", str(seconds)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"^AES-256-GCM\s+([\d.]+)k", out, re.MULTILINE | re.IGNORECASE)
    return MIB / (float(found.group(1)) * 1000) * 1e6 if found else None


def measure(seconds: float = 1.0) -> dict[str, float | None]:
    server_ctx, client_ctx = contexts()
    return {
        "encrypt": openssl_speed(),
        "copy": copy_bytes(seconds),
        "send": plain_send(seconds),
        "memory_bio": memory_bio(server_ctx, client_ctx, seconds),
        "socket_bio": socket_bio(server_ctx, client_ctx, seconds),
        "socket_bio_16k": socket_bio(server_ctx, client_ctx, seconds, 16 * 1024),
    }


LABELS = {
    "encrypt": "AES-256-GCM alone, 16 KiB records (`openssl speed -evp aes-256-gcm`)",
    "copy": "one user-space copy of 1 MiB into a new `bytes`",
    "send": "`send()` of 256 KiB of plain bytes on TCP loopback (the kernel's copy)",
    "memory_bio": "`SSLObject.write(256 KiB)` + `outgoing.read()` (memory BIO, uvloop's path, "
    "no socket)",
    "socket_bio": "`SSLSocket.sendall(256 KiB)` (socket BIO: OpenSSL send()s each 16 KiB record)",
    "socket_bio_16k": "`SSLSocket.sendall(16 KiB)` (the same, HAProxy's buffer size)",
}


def rows(result: dict[str, float | None]) -> list[tuple[str, str]]:
    """(what, µs per MiB) for the report, with the memory-BIO path's total."""
    out = [(LABELS[k], f"{v:.0f}" if v is not None else "–") for k, v in result.items()]
    bio, send, sock = result.get("memory_bio"), result.get("send"), result.get("socket_bio")
    if bio is not None and send is not None and sock is not None:
        total = bio + send
        out.append(
            (
                "memory-BIO path in all: `SSLObject.write` + `outgoing.read()` + `send()`",
                f"**{total:.0f}** ({total / sock:.2f}× the socket path)",
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.tlsbio", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="per path, best of 3 thirds (1)")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    ap.add_argument(
        "--cpus",
        type=int,
        nargs=2,
        metavar=("SENDER", "READER"),
        help="CPUs of the sending and the receiving threads (1 0 when both exist; -1 -1: none)",
    )
    args = ap.parse_args(argv)
    cpus = args.cpus or ([1, 0] if {0, 1} <= os.sched_getaffinity(0) else [-1, -1])
    global READER_CPU
    READER_CPU = cpus[1] if cpus[1] >= 0 else None
    pin(cpus[0] if cpus[0] >= 0 else None)
    result = measure(args.seconds)
    if args.json:
        print(json.dumps(result))
        return
    for what, value in rows(result):
        print(f"{value:>10}  µs/MiB  {what}")


if __name__ == "__main__":
    main()
