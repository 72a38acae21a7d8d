"""splice(2) flows on real loopback sockets under uvloop: exact bytes, transports usable
afterwards, failures reported without leaking fds, pipes reused. (The relays that start them
pause and resume the source transport; these tests do it themselves.)"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from tcpvs.proxy.splice import Pipe, PipePool, SpliceFlow

PIPE = 64 * 1024  # small pipes, so every size above 64 KiB wraps the pipe many times
TIMEOUT = 5.0


class Peer(asyncio.Protocol):
    """The proxy's end of a connection: records what uvloop itself delivers."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.arrived = asyncio.Event()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)

    async def read(self, n: int) -> bytes:
        while len(self.data) < n:
            self.arrived.clear()
            await self.arrived.wait()
        return bytes(self.data[:n])


class Sockets:
    """server socket -> [src transport | relay | dst transport] -> client socket."""

    server: socket.socket
    client: socket.socket
    src: Peer
    dst: Peer

    @classmethod
    async def open(cls) -> Sockets:
        lab = cls()
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listening:
            listening.setblocking(False)
            accept = loop.create_task(loop.sock_accept(listening))
            _, lab.src = await loop.create_connection(Peer, *listening.getsockname())
            lab.server, _ = await accept
        accepted: asyncio.Future[Peer] = loop.create_future()

        def make() -> Peer:
            peer = Peer()
            accepted.set_result(peer)
            return peer

        proxy = await loop.create_server(make, "127.0.0.1", 0)
        lab.client = socket.socket()
        lab.client.setblocking(False)
        await loop.sock_connect(lab.client, proxy.sockets[0].getsockname())
        lab.dst = await accepted
        proxy.close()
        await asyncio.sleep(0)  # connection_made
        return lab

    async def recv_client(self, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while len(buf) < n:
            chunk = await loop.sock_recv(self.client, min(n - len(buf), 1 << 20))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    async def close(self) -> None:
        for peer in (self.src, self.dst):
            peer.transport.abort()  # type: ignore[union-attr]
            await peer.lost
        self.server.close()
        self.client.close()


async def open_fds() -> int:
    """Open fds of this process, after a first Sockets made uvloop open what it opens lazily."""
    await (await Sockets.open()).close()
    return len(os.listdir("/proc/self/fd"))


def run(test: Callable[[], Awaitable[None]]) -> None:
    uvloop.run(asyncio.wait_for(test(), TIMEOUT))


def flow(
    src: asyncio.Transport, dst: asyncio.Transport, nbytes: int, pool: PipePool
) -> tuple[SpliceFlow, asyncio.Future]:
    """Start a flow of `nbytes` (-1: until the end) from `src` to `dst`, reading `src` paused
    meanwhile as a relay does; the future gets the callback's argument and the bytes counted
    through `progress`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    counted = [0]

    def finished(exc: BaseException | None) -> None:
        if exc is None and nbytes >= 0:  # (after its end, a source has nothing to read)
            src.resume_reading()
        done.set_result((exc, counted[0]))

    f = SpliceFlow(
        loop, src, dst, nbytes, lambda n: counted.__setitem__(0, counted[0] + n), finished, pool
    )
    f.start()
    src.pause_reading()
    return f, done


def relay(lab: Sockets, nbytes: int, pool: PipePool) -> tuple[SpliceFlow, asyncio.Future]:
    """A flow of `nbytes` from the lab's server to its client."""
    return flow(lab.src.transport, lab.dst.transport, nbytes, pool)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [1, 1000, PIPE, 300_000, 3 * 1024 * 1024 + 7])
def test_exact_bytes_then_both_transports_carry_on(size: int) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        payload = os.urandom(size)
        r, done = relay(lab, size, pool)
        # the next response right behind the body: it must stay for the server transport
        sending = loop.create_task(loop.sock_sendall(lab.server, payload + b"NEXT"))
        got = await lab.recv_client(size)
        exc, counted = await done
        await sending
        assert exc is None and got == payload
        assert counted == size
        assert await lab.src.read(4) == b"NEXT"  # reading resumed, nothing of the body in it
        lab.dst.transport.write(b"after")  # type: ignore[union-attr]
        assert await lab.recv_client(5) == b"after"
        lab.src.transport.write(b"request 2")  # type: ignore[union-attr]
        assert await loop.sock_recv(lab.server, 100) == b"request 2"
        await loop.sock_sendall(lab.client, b"from client")
        assert await lab.dst.read(11) == b"from client"
        assert not r.active and pool.idle == 1
        await lab.close()
        pool.close()

    run(body)


def test_bytes_buffered_in_the_client_transport_go_first() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        head = os.urandom(4 * 1024 * 1024)  # more than the socket takes: uvloop buffers it
        lab.dst.transport.write(head)  # type: ignore[union-attr]
        assert lab.dst.transport.get_write_buffer_size()  # type: ignore[union-attr]
        payload = os.urandom(500_000)
        _, done = relay(lab, len(payload), pool)
        await loop.sock_sendall(lab.server, payload)
        await asyncio.sleep(0.05)  # the relay is waiting, not splicing past the buffer
        assert not done.done()
        assert await lab.recv_client(len(head) + len(payload)) == head + payload
        assert (await done)[0] is None
        await lab.close()
        pool.close()

    run(body)


def test_server_closing_early_is_reported_and_leaks_nothing() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        before = await open_fds()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        _, done = relay(lab, 1_000_000, pool)
        await loop.sock_sendall(lab.server, os.urandom(200_000))
        lab.server.close()
        exc, counted = await done
        assert isinstance(exc, ConnectionError) and "800000 bytes to go" in str(exc)
        assert len(await lab.recv_client(200_000)) == counted == 200_000
        await lab.close()
        pool.close()
        assert await open_fds() == before

    run(body)


@pytest.mark.parametrize("reset", [False, True])
def test_client_leaving_early_is_reported_and_leaks_nothing(reset: bool) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        before = await open_fds()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        _, done = relay(lab, 50_000_000, pool)
        sending = loop.create_task(loop.sock_sendall(lab.server, os.urandom(8_000_000)))
        await lab.recv_client(100_000)
        if reset:  # RST: the relay's socket gets an error (EPOLLERR)
            lab.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        lab.client.close()
        exc, _ = await done
        assert isinstance(exc, OSError)
        assert pool.idle == 0  # that pipe may hold bytes: closed, not pooled
        sending.cancel()
        await lab.close()
        pool.close()
        assert await open_fds() == before

    run(body)


def test_cancel_mid_body_calls_nothing_back_and_leaks_nothing() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        before = await open_fds()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        r, done = relay(lab, 10_000_000, pool)
        await loop.sock_sendall(lab.server, os.urandom(300_000))
        await lab.recv_client(100_000)
        r.cancel()
        r.cancel()
        await asyncio.sleep(0.05)
        assert not done.done() and not r.active
        await lab.close()
        pool.close()
        assert await open_fds() == before

    run(body)


def test_the_pool_reuses_empty_pipes_and_closes_full_ones() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        lab = await Sockets.open()
        pool = PipePool(PIPE, max_idle=1)
        for _ in range(3):
            payload = os.urandom(200_000)
            _, done = relay(lab, len(payload), pool)
            await loop.sock_sendall(lab.server, payload)
            assert await lab.recv_client(len(payload)) == payload
            assert (await done)[0] is None
        assert pool.created == 1 and pool.idle == 1
        await lab.close()
        before = await open_fds()
        a, b = pool.acquire(), pool.acquire()
        assert pool.created == 2 and a.size == PIPE
        os.write(a.w, b"x")
        a.filled = 1
        pool.release(a)  # bytes left: closed
        pool.release(b)
        assert pool.idle == 1 and await open_fds() == before  # a was the pooled one
        pool.close()
        assert await open_fds() == before - 2

    run(body)


def test_pipe_size_is_set() -> None:
    pipe = Pipe(1024 * 1024)
    try:
        assert pipe.size == 1024 * 1024
    finally:
        pipe.close()


def test_both_ways_until_each_end_is_passed_on() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        before = await open_fds()
        lab = await Sockets.open()
        pool = PipePool(PIPE)
        # bytes the server transport still buffers go first (the 101 or raw TCP pending bytes)
        pending = os.urandom(4 * 1024 * 1024)
        lab.src.transport.write(pending)  # type: ignore[union-attr]
        assert lab.src.transport.get_write_buffer_size()  # type: ignore[union-attr]
        client, server = lab.dst.transport, lab.src.transport
        _, up_done = flow(client, server, -1, pool)  # type: ignore[arg-type]
        _, down_done = flow(server, client, -1, pool)  # type: ignore[arg-type]
        up, down = os.urandom(700_000), os.urandom(1_300_000)

        async def side(sock: socket.socket, out: bytes, n: int) -> bytes:
            await loop.sock_sendall(sock, out)
            sock.shutdown(socket.SHUT_WR)
            buf = bytearray()
            while chunk := await loop.sock_recv(sock, 1 << 20):
                buf += chunk
            assert len(buf) == n
            return bytes(buf)

        at_server, at_client = await asyncio.gather(
            side(lab.server, down, len(pending + up)), side(lab.client, up, len(down))
        )
        assert at_server == pending + up and at_client == down
        assert await up_done == (None, len(up)) and await down_done == (None, len(down))
        assert pool.idle == 2
        assert not lab.src.data and not lab.dst.data  # nothing went through uvloop
        await lab.close()
        pool.close()
        assert await open_fds() == before

    run(body)
