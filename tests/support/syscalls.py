"""System calls per request of a running proxy: strace -c attached to all its processes and threads
while a bounded load runs. Reusable by tests (a regression budget) and by the bench.

    from tests.support.syscalls import count_syscalls, keepalive_requests
    count = count_syscalls(pid, lambda: keepalive_requests(port, ["/a/13", "/b/13"], 2000))
    count.per_request            # e.g. 4.02
    count.calls["epoll_wait"]    # raw totals by name

CLI: python3 -m tests.support.syscalls --pid PID --port PORT [--path /a/13 ...] [-n 2000]
"""

from __future__ import annotations

import argparse
import http.client
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import process_tree


@dataclass(frozen=True)
class SyscallCount:
    requests: int
    calls: dict[str, int]  # name -> calls, all processes and threads together
    errors: dict[str, int]  # name -> calls that failed (EAGAIN from a speculative read...)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def per_request(self) -> float:
        return self.total / max(self.requests, 1)

    def top(self, n: int = 6) -> list[tuple[str, float]]:
        """The n most frequent calls, as calls per request."""
        ranked = sorted(self.calls.items(), key=lambda kv: -kv[1])[:n]
        return [(name, calls / max(self.requests, 1)) for name, calls in ranked]


def parse_strace_summary(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Parse `strace -c -U calls,errors,name` output into (calls, errors) by syscall name."""
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 2 or not tokens[0].isdigit() or tokens[-1] == "total":
            continue  # header, separator, total
        calls[tokens[-1]] = int(tokens[0])
        if len(tokens) == 3:
            errors[tokens[-1]] = int(tokens[1])
    return calls, errors


def count_syscalls(
    pid: int | Sequence[int], drive: Callable[[], int], *, timeout: float = 60.0
) -> SyscallCount:
    """Count the system calls of pid's process tree (or of the given pids) while drive() runs.

    drive() makes the load and returns how many requests it completed. strace is attached to
    every thread before drive() starts and detached after; the traced process keeps running.
    """
    pids = process_tree(pid) if isinstance(pid, int) else list(pid)
    with tempfile.TemporaryDirectory(prefix="tcpvs-strace-") as tmp:
        out, err = Path(tmp) / "summary", Path(tmp) / "stderr"
        argv = ["strace", "-c", "-f", "-U", "calls,errors,name", "-o", str(out)]
        for p in pids:
            argv += ["-p", str(p)]
        with err.open("wb") as err_file:
            tracer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_file)
        try:
            deadline = time.monotonic() + timeout
            # strace says "Process N attached" per thread; wait for at least one per pid.
            while err.read_text().count("attached") < len(pids):
                if tracer.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"strace did not attach: {err.read_text().strip()}")
                time.sleep(0.05)
            requests = drive()
        finally:
            tracer.send_signal(signal.SIGINT)  # detach and write the summary
            try:
                tracer.wait(timeout)
            except subprocess.TimeoutExpired:
                tracer.kill()
                tracer.wait()
        calls, errors = parse_strace_summary(out.read_text() if out.exists() else "")
    return SyscallCount(requests, calls, errors)


def keepalive_requests(
    port: int, paths: Sequence[str], n: int, *, host: str = "127.0.0.1", timeout: float = 10.0
) -> int:
    """n GET requests, one after another on one keep-alive connection, cycling over paths.

    Raises on any answer other than 200 or on a reconnect; returns n. Deterministic load:
    with one connection there is no batching, so per-request counts are an upper bound.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(n):
            conn.request("GET", paths[i % len(paths)])
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200 or conn.sock is not sock:
                raise RuntimeError(f"request {i}: status {resp.status} or connection not kept")
    finally:
        conn.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pid", type=int, required=True, help="proxy PID (its tree is traced)")
    ap.add_argument("--port", type=int, required=True, help="proxy port on 127.0.0.1")
    ap.add_argument("--path", action="append", help="request path (repeat); default /")
    ap.add_argument("-n", type=int, default=2000, help="requests (default 2000)")
    args = ap.parse_args()
    count = count_syscalls(
        args.pid, lambda: keepalive_requests(args.port, args.path or ["/"], args.n)
    )
    print(f"{count.per_request:.2f} syscalls per request over {count.requests} requests")
    for name, per in count.top(20):
        print(f"  {name:<20} {per:8.3f}")


if __name__ == "__main__":
    main()
