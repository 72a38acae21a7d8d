"""User-space cost of one keep-alive request in the engine, without sockets or a loop.

Drives a real ClientConnection and its HttpExchange (the production setup: scheduler `http`,
two rules, X-Forwarded-For) with stand-in transports: the client's request goes in through
data_received(), the pooled server connection answers through its own data_received(), the
response comes out. What is
left is exactly the Python (or compiled) work per request, so an A/B of two builds or of the
pure-Python and compiled engine takes seconds and is barely disturbed by other load (the best
of several runs is reported).

    python3 -m bench.hotpath                 # whatever the tree imports (compiled if built)
    TCPVS_PURE_PYTHON=1 python3 -m bench.hotpath
    python3 -m bench.hotpath --instructions  # instructions per request, counted by callgrind

Instructions do not depend on what else the machine is doing: callgrind runs the loop twice,
for N and 2N requests, and the difference over N is the cost of one request alone. The hash
seed is fixed (PYTHONHASHSEED=0): dict collisions otherwise move the count by about 1%.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from tcpvs.compiled import IMPLEMENTATION
from tcpvs.proxy.client import ClientConnection
from tcpvs.proxy.listener import ServiceListener
from tcpvs.proxy.upstream import ServerConnection, pool_key
from tcpvs.table.config import parse_config

CONFIG = """\
Virtual bench {
    listen = 127.0.0.1:8080
    scheduler = http
    server = 127.0.0.1:9001 1
    server = 127.0.0.1:9002 1
    rule = pattern "^/a/" use server 127.0.0.1:9001
    rule = pattern ".*" use server 127.0.0.1:9002
}
"""
REQUESTS = (
    b"GET /a/13 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /b/13 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 12:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n"
    b"Hello, world\n"
)


class StandInTransport:
    """Just enough of an asyncio transport: writes are counted, not sent."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("the benchmark's connections must stay open")

    abort = close


def run(requests: int) -> float:
    """µs per request over `requests` keep-alive requests on one client connection."""
    service = parse_config(CONFIG, "<bench>").services["bench"]
    listener = ServiceListener(service)
    listener.now = 1.0
    for server in service.servers:  # one idle keep-alive connection per server, as when warm
        conn = ServerConnection(listener.pool, server, pool_key(server, None))
        conn.connection_made(StandInTransport())
        conn.early = None
        listener.pool.release(conn, float("inf"))
    client = StandInTransport()
    frontend = ClientConnection(listener)
    frontend.connection_made(client)
    pool = listener.pool
    servers = service.servers
    start = time.perf_counter()
    for i in range(requests):
        frontend.data_received(REQUESTS[i & 1])
        conn = frontend.server_conn
        conn.data_received(RESPONSE)
    elapsed = time.perf_counter() - start
    pooled_back = all(pool.acquire(s, service) is not None for s in servers)
    if client.written != requests * len(RESPONSE) or not pooled_back:
        raise AssertionError("the stand-in requests were not all answered")
    return elapsed / requests * 1e6


def instructions(requests: int) -> float:
    """Instructions per request (callgrind), from runs of `requests` and 2 × `requests`."""
    totals = []
    for n in (requests, 2 * requests):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "callgrind.out")
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 sys.executable, "-m", "bench.hotpath", "--requests", str(n), "--runs", "1"],
                capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
            found = re.search(r"Collected : (\d+)", done.stderr)
            if found is None:
                raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-500:]}")
            totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / requests


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python3 -m bench.hotpath", description=__doc__.split("\n")[0]
    )
    ap.add_argument("-n", "--requests", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7, help="best of RUNS (7)")
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    args = ap.parse_args(argv)
    if args.instructions:
        per_request = instructions(min(args.requests, 5000))
        print(f"engine {IMPLEMENTATION}: {per_request:,.0f} instructions/request (callgrind)")
        return
    best = min(run(args.requests) for _ in range(args.runs))
    print(f"engine {IMPLEMENTATION}: {best:.2f} µs/request (best of {args.runs} × {args.requests})")


if __name__ == "__main__":
    main()
