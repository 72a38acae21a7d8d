"""CPU per body of the relay process, copying (uvloop reads bytes, transport.write) against
splice(2) (tcpvs.proxy.splice), on loopback with real sockets: a server process writes bodies,
the relay process (pinned, measured with getrusage) moves them, a client process reads them.

    python3 -m bench.splice                       # sizes 16K..4M, both modes, pipe 256K
    python3 -m bench.splice --pipe-size 65536 1048576 --sizes 262144 4194304

The client asks for N bytes on a keep-alive connection and waits for all of them before asking
again; the relay starts the splice for N as the request passes (as tcpvs would for the rest of
a Content-Length body), so whole bodies are spliced. Every run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import Procs, free_port, port_open, wait_until

SIZES = [16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20]
TARGET_BYTES = 512 << 20  # per run: a relay CPU time well above the tick-based accounting
MIN_BODIES, MAX_BODIES = 50, 5000
RUN_SECONDS = 20.0  # the client stops early past this


# -- the three roles ---------------------------------------------------------------------------


def serve(port: int) -> None:
    """Server: connections one after another; per request line "N\\n", write N bytes at once."""
    body = memoryview(os.urandom(max(SIZES) * 4))
    with socket.create_server(("127.0.0.1", port)) as listening:
        while True:  # stopped by PID
            conn, _ = listening.accept()
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    conn.sendall(body[: int(line)])


def fetch(port: int, size: int, count: int, seconds: float) -> None:
    """Client: `count` bodies of `size` bytes, one at a time, stopping early after `seconds`."""
    buf = bytearray(1 << 20)
    deadline = time.monotonic() + seconds
    done = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        request = b"%d\n" % size
        while done < count and time.monotonic() < deadline:
            sock.sendall(request)
            left = size
            while left:
                n = sock.recv_into(buf, min(left, len(buf)))
                if not n:
                    raise SystemExit("relay closed early")
                left -= n
            done += 1
    print(json.dumps({"bodies": done}), flush=True)


class ToServer(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.client: FromClient | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client.body_data(data)  # type: ignore[union-attr]


class FromClient(asyncio.Protocol):
    """The relay's client side: forwards each request line, relays the body back."""

    def __init__(self, server: ToServer, mode: str, pool) -> None:
        self.server = server
        self.mode = mode
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.left = 0
        self.splicing = False
        self.cpu0 = (0.0, 0.0)
        self.bodies = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.client = self
        self.cpu0 = cpu_now()

    def data_received(self, data: bytes) -> None:
        size = int(data)  # one request in flight: the client waits for its whole body
        self.server.transport.write(data)  # type: ignore[union-attr]
        if self.mode == "copy":
            self.left = size
            return
        from tcpvs.proxy.splice import SpliceRelay

        self.splicing = True
        SpliceRelay(
            asyncio.get_running_loop(),
            self.server.transport,  # type: ignore[arg-type]
            self.transport,  # type: ignore[arg-type]
            size,
            self.spliced,
            pool=self.pool,
        ).start()

    def spliced(self, exc: BaseException | None) -> None:
        self.splicing = False
        if exc is not None:
            raise exc
        self.bodies += 1

    def body_data(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]
        self.left -= len(data)
        if not self.left:
            self.bodies += 1

    # flow control as tcpvs does it, except while splicing (the server side is the relay's)
    def pause_writing(self) -> None:
        if not self.splicing:
            self.server.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        if not self.splicing:
            self.server.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.bodies:  # not the bench's port probe
            user, sys_ = (a - b for a, b in zip(cpu_now(), self.cpu0, strict=True))
            print(json.dumps({"user": user, "sys": sys_, "bodies": self.bodies}), flush=True)


def cpu_now() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def relay(port: int, server_port: int, mode: str, pipe_size: int) -> None:
    """Relay: one server connection, one client at a time, forever (stopped by PID)."""
    from tcpvs.proxy.splice import PipePool

    loop = asyncio.get_running_loop()
    _, server = await loop.create_connection(ToServer, "127.0.0.1", server_port)
    pool = PipePool(pipe_size)
    await loop.create_server(lambda: FromClient(server, mode, pool), "127.0.0.1", port)
    await asyncio.Event().wait()


# -- the measurement ---------------------------------------------------------------------------


def cpus() -> tuple[int | None, int | None]:
    """(relay CPU, peers' CPU): the relay alone on one CPU, server and client on another."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return available[-1], available[0]


def one_run(mode: str, size: int, pipe_size: int, tmp: Path) -> dict:
    """Start server, relay, client; return the relay's CPU per body for this mode and size."""
    procs = Procs()
    count = max(MIN_BODIES, min(MAX_BODIES, TARGET_BYTES // size))
    py, me = sys.executable, "bench.splice"
    sport, rport = free_port(), free_port()
    log = tmp / f"{mode}-{size}-{pipe_size}.log"
    log.write_text("")
    relay_cpu, peers_cpu = cpus()
    try:
        argv = [py, "-m", me, "--role", "server", "--port", str(sport)]
        server = procs.spawn(argv, cpu=peers_cpu, log=tmp / "server.log")
        wait_until(lambda: port_open(sport), server, tmp / "server.log")
        argv = [py, "-m", me, "--role", "relay", "--port", str(rport), "--server-port",
                str(sport), "--mode", mode, "--pipe-size", str(pipe_size)]  # fmt: skip
        relay_proc = procs.spawn(argv, cpu=relay_cpu, log=log)
        wait_until(lambda: port_open(rport), relay_proc, log)
        argv = [py, "-m", me, "--role", "client", "--port", str(rport), "--size", str(size),
                "--count", str(count)]  # fmt: skip
        start = time.monotonic()
        client = procs.spawn(argv, cpu=peers_cpu, log=tmp / "client.log")
        client.wait(RUN_SECONDS + 30)
        wall = time.monotonic() - start
        wait_until(lambda: '"bodies"' in log.read_text(), relay_proc, log)
    finally:
        procs.stop_all()
    result = json.loads(log.read_text().splitlines()[-1])
    bodies, cpu = result["bodies"], result["user"] + result["sys"]
    return {
        "mode": mode,
        "pipe": pipe_size,
        "size": size,
        "bodies": bodies,
        "us_per_body": cpu / bodies * 1e6,
        "user_us": result["user"] / bodies * 1e6,
        "sys_us": result["sys"] / bodies * 1e6,
        "ns_per_byte": cpu / (bodies * size) * 1e9,
        "gbps": bodies * size * 8 / wall / 1e9,
    }


def crossover(copy: list[dict], splice: list[dict]) -> float | None:
    """Body size where the lines cost = fixed + per_byte * size (least squares) cross."""

    def fit(rows: list[dict]) -> tuple[float, float]:
        line = statistics.linear_regression(
            [r["size"] for r in rows], [r["us_per_body"] for r in rows]
        )
        return line.intercept, line.slope

    (a_c, b_c), (a_s, b_s) = fit(copy), fit(splice)
    if b_c <= b_s:
        return None
    return (a_s - a_c) / (b_c - b_s)


def measure(args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Every cell `repeat` times, rounds interleaved (drift hits all cells alike); medians."""
    cells = [("copy", 0)] + [("splice", pipe) for pipe in args.pipe_size]
    runs: dict[tuple, list[dict]] = {}
    for _ in range(args.repeat):
        for size in args.sizes:
            for mode, pipe in cells:
                runs.setdefault((mode, pipe, size), []).append(one_run(mode, size, pipe, tmp))
    return [
        sorted(rs, key=lambda r: r["us_per_body"])[len(rs) // 2]
        for _, rs in sorted(runs.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1]))
    ]


def report(rows: list[dict], pipes: list[int]) -> None:
    print(f"{'mode':7} {'pipe':>6} {'size':>6} {'bodies':>6} {'us/body':>8} {'user':>7} "
          f"{'sys':>7} {'ns/B':>6} {'Gbit/s':>6}")  # fmt: skip
    for r in rows:
        print(f"{r['mode']:7} {r['pipe'] >> 10:>5}K {r['size'] >> 10:>5}K {r['bodies']:>6} "
              f"{r['us_per_body']:>8.1f} {r['user_us']:>7.1f} {r['sys_us']:>7.1f} "
              f"{r['ns_per_byte']:>6.3f} {r['gbps']:>6.2f}")  # fmt: skip
    copy = [r for r in rows if r["mode"] == "copy"]
    for pipe in pipes:
        splice = [r for r in rows if r["mode"] == "splice" and r["pipe"] == pipe]
        cross = crossover(copy, splice) if len(copy) > 1 else None
        where = "never" if cross is None else f"{max(cross, 0) / 1024:.0f} KiB"
        wins = [s["size"] >> 10 for s, c in zip(splice, copy, strict=True)
                if s["us_per_body"] < c["us_per_body"]]  # fmt: skip
        print(f"pipe {pipe >> 10} KiB: linear fits cross at {where}; "
              f"splice cheaper at {wins} KiB")  # fmt: skip


def main_bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tcpvs-splice-") as tmp:
        rows = measure(args, Path(tmp))
    report(rows, args.pipe_size)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "server", "relay", "client"], default="bench")
    parser.add_argument("--port", type=int)
    parser.add_argument("--server-port", type=int)
    parser.add_argument("--mode", choices=["copy", "splice"], default="copy")
    parser.add_argument("--size", type=int)
    parser.add_argument("--count", type=int)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--pipe-size", type=int, nargs="+", default=[256 << 10])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median kept)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.role == "server":
        serve(args.port)
    elif args.role == "client":
        fetch(args.port, args.size, args.count, RUN_SECONDS)
    elif args.role == "relay":
        import uvloop

        uvloop.run(relay(args.port, args.server_port, args.mode, args.pipe_size[0]))
    else:
        main_bench(args)


if __name__ == "__main__":
    main()
