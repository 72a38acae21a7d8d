"""Idle keep-alive client connections by the thousand, and the memory of the process that holds
them: what the idle-connections regression test and `python -m bench.idle` measure."""

from __future__ import annotations

import errno
import re
import resource
import selectors
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import process_tree

COUNT = 10_000
TARGET_MIB = 40.0  # the target for COUNT connections
PATHS = ("/a/13", "/b/13")  # two routes, small answers: the connection is what is measured
WINDOW = 128  # connections connecting or waiting for an answer at once (listen backlog: 2048)
SETTLE = 1.0  # seconds between the last answer and the second reading
TIMEOUT = 60.0  # seconds to open all connections and get every answer
# File descriptors needed besides the connections: backend pool (<= WINDOW), listeners, logs.
FD_MARGIN = WINDOW + 256


# -- memory and limits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Of a process and its descendants (tcpvsd --workers N forks its workers)."""

    rss_kib: int  # VmRSS of /proc/PID/status
    pss_kib: int  # Pss of /proc/PID/smaps_rollup: pages shared with others split between them


def _proc_kib(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in {path}")


def memory(pid: int) -> Memory:
    tree = process_tree(pid)
    return Memory(
        sum(_proc_kib(f"/proc/{p}/status", "VmRSS") for p in tree),
        sum(_proc_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in tree),
    )


def nofile_needed(count: int) -> int:
    return count + FD_MARGIN


def raise_nofile(need: int, pid: int = 0) -> None:
    """Soft RLIMIT_NOFILE of pid (0: this process) up to its hard limit when below `need`, as
    prlimit(1) does; RuntimeError when even the hard limit is too low."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard < need:  # RLIM_INFINITY (-1) never applies: the kernel caps NOFILE (fs.nr_open)
        who = f"PID {pid}" if pid else "this process"
        raise RuntimeError(
            f"{who} may open at most {hard} files (hard RLIMIT_NOFILE) but needs {need}: "
            "raise it (ulimit -Hn, LimitNOFILE=, /etc/security/limits.conf)"
        )
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))


# -- the clients ---------------------------------------------------------------------------------


def response_end(buf: bytes | bytearray) -> int | None:
    """Length of the Content-Length framed response at the start of buf; None if incomplete."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end])
    found = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
    if found is None:
        raise RuntimeError(f"answer without Content-Length: {head!r}")
    end = head_end + 4 + int(found.group(1))
    return end if len(buf) >= end else None


class IdleClients:
    """Client connections to 127.0.0.1:port that stay open after their requests: non-blocking
    sockets on one selector, so that 10,000 take seconds. close() (or `with`) ends them."""

    def __init__(self, port: int, host: str = "127.0.0.1", paths: Sequence[str] = PATHS) -> None:
        self.address = (host, port)
        # Connection i always asks for paths[i % len(paths)]: both routes, same server each time.
        self.requests = [b"GET %s HTTP/1.1\r\nHost: idle\r\n\r\n" % p.encode() for p in paths]
        self.socks: list[socket.socket] = []

    def __enter__(self) -> IdleClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []

    def open(self, n: int, *, window: int = WINDOW, timeout: float = TIMEOUT) -> None:
        """n new connections, one keep-alive GET each with its answer read: then idle."""
        raise_nofile(nofile_needed(len(self.socks) + n))
        first = len(self.socks)
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            self.socks.append(sock)
        self._exchange(range(first, len(self.socks)), window, timeout, connect=True)

    def request(
        self, indices: Iterable[int], *, window: int = WINDOW, timeout: float = TIMEOUT
    ) -> None:
        """One more GET on each of these open connections."""
        self._exchange(indices, window, timeout, connect=False)

    def still_open(self) -> int:
        """Connections with nothing to read: neither closed by the server nor sent anything."""
        with selectors.DefaultSelector() as sel:
            for sock in self.socks:
                sel.register(sock, selectors.EVENT_READ)
            return len(self.socks) - len(sel.select(timeout=0))

    def _exchange(self, indices: Iterable[int], window: int, timeout: float, connect: bool) -> None:
        """Connect (if `connect`), send one request and read its whole answer on each of these
        connections, `window` at a time. RuntimeError on anything but a complete 200 that
        keeps the connection open, or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        todo = iter(indices)
        with selectors.DefaultSelector() as sel:

            def send(sock: socket.socket, i: int) -> None:
                request = self.requests[i % len(self.requests)]
                if sock.send(request) != len(request):  # an idle socket's buffer takes it all
                    raise RuntimeError(f"connection {i}: short send")

            def begin() -> None:
                i = next(todo, None)
                if i is None:
                    return
                sock = self.socks[i]
                if connect:
                    if (err := sock.connect_ex(self.address)) not in (0, errno.EINPROGRESS):
                        raise RuntimeError(f"connection {i}: connect: {errno.errorcode[err]}")
                    sel.register(sock, selectors.EVENT_WRITE, (i, bytearray()))
                else:
                    sel.register(sock, selectors.EVENT_READ, (i, bytearray()))
                    send(sock, i)

            for _ in range(window):
                begin()
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{len(sel.get_map())} connections unanswered in {timeout}s")
                for key, events in sel.select(left):
                    sock, (i, buf) = key.fileobj, key.data
                    assert isinstance(sock, socket.socket)
                    if events & selectors.EVENT_WRITE:  # connected, or failed to
                        if err := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            raise RuntimeError(f"connection {i}: connect: {errno.errorcode[err]}")
                        sel.modify(sock, selectors.EVENT_READ, key.data)
                        send(sock, i)
                        continue
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError(f"connection {i}: closed by the server")
                    buf += chunk
                    if (end := response_end(buf)) is None:
                        continue
                    head = bytes(buf[: buf.find(b"\r\n\r\n")])
                    if not head.startswith(b"HTTP/1.1 200 ") or end != len(buf):
                        raise RuntimeError(f"connection {i}: {head!r}, {len(buf) - end} B extra")
                    if re.search(rb"\r\nconnection:[ \t]*close", head, re.IGNORECASE):
                        raise RuntimeError(f"connection {i}: not kept alive")
                    sel.unregister(sock)
                    begin()


# -- the measurement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleResult:
    count: int
    before: Memory  # warmed daemon, no client connection
    after: Memory  # with `count` idle keep-alive connections
    seconds: float  # to open them and get every answer

    @property
    def rss_growth_mib(self) -> float:
        return (self.after.rss_kib - self.before.rss_kib) / 1024

    @property
    def pss_growth_mib(self) -> float:
        return (self.after.pss_kib - self.before.pss_kib) / 1024

    def summary(self, target_mib: float = TARGET_MIB, target_count: int = COUNT) -> str:
        target = target_mib * self.count / target_count
        verdict = "met" if self.rss_growth_mib <= target else "MISSED"
        lines = [
            f"{self.count} idle keep-alive connections, one GET each, opened and answered "
            f"in {self.seconds:.1f} s"
        ]
        for name, growth, before, after in (
            ("RSS", self.rss_growth_mib, self.before.rss_kib, self.after.rss_kib),
            ("Pss", self.pss_growth_mib, self.before.pss_kib, self.after.pss_kib),
        ):
            lines.append(
                f"tcpvsd {name} {before / 1024:.1f} -> {after / 1024:.1f} MiB: "
                f"+{growth:.1f} MiB, {growth * 1024 / self.count:.2f} KiB per connection"
            )
        lines.append(f"target: RSS growth <= {target:g} MiB: {verdict}")
        return "\n".join(lines)


def warm_up(port: int, window: int = WINDOW) -> None:
    """`window` connections at once, one request each, then closed: the code paths and the pool
    of server connections (as many as the measurement uses) exist before the baseline."""
    with IdleClients(port) as clients:
        clients.open(window, window=window)
    time.sleep(SETTLE)  # let tcpvsd see the closes


def measure_idle(pid: int, clients: IdleClients, count: int, *, window: int = WINDOW) -> IdleResult:
    """tcpvsd's memory (pid: warmed, no client) before and after `clients` opens `count` idle
    keep-alive connections; they stay open in `clients`."""
    before = memory(pid)
    start = time.monotonic()
    clients.open(count, window=window)
    seconds = time.monotonic() - start
    time.sleep(SETTLE)  # listener ticks and anything deferred happen before the reading
    return IdleResult(count, before, memory(pid), seconds)


# -- the tracemalloc breakdown (a Switch in a child process) -------------------------------------
