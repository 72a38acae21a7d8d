"""Zero-copy relaying with splice(2): large bodies and tunnels move socket -> pipe -> socket in
the kernel instead of through Python bytes, driven by the running uvloop loop. Linux only.

uvloop refuses add_reader/add_writer on a transport's fd, so a relay watches and splices an
os.dup() of it: epoll keys on (fd, open file), the dup is a separate registration of the same
socket, and uvloop drops the dup's registration on remove_reader/remove_writer (uvloop#61).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
from collections.abc import Callable

# Measured with bench/splice.py (relay CPU per body, loopback): 256 KiB pipes cost as little
# as 1 MiB ones (64 KiB ones more) for a quarter of the memory; below ~512 KiB the per-relay
# setup (2 dups, epoll changes, pause/resume) costs more CPU than the two copies it saves.
PIPE_SIZE = 256 * 1024
SPLICE_THRESHOLD = 512 * 1024
MAX_IDLE_PIPES = 32

_FLAGS = os.SPLICE_F_NONBLOCK | os.SPLICE_F_MOVE
_READ, _WRITE = 1, 2

Done = Callable[[BaseException | None], None]
Progress = Callable[[int], None]


class Pipe:
    """A non-blocking pipe and how many bytes sit in it (a pipe holding bytes is never reused)."""

    __slots__ = ("r", "w", "size", "filled")

    def __init__(self, size: int) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self.size = fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, size)
        except OSError:  # over pipe-max-size or the user's pipe-user-pages quota: keep default
            self.size = fcntl.fcntl(self.w, fcntl.F_GETPIPE_SZ)
        self.filled = 0

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


class PipePool:
    """Pipes kept open between relays: a pipe2 + F_SETPIPE_SZ + 2 closes saved per relay.

    Bounded: at most `max_idle` empty pipes wait here; a pipe with bytes left is closed."""

    def __init__(self, size: int = PIPE_SIZE, max_idle: int = MAX_IDLE_PIPES) -> None:
        self.size = size
        self.max_idle = max_idle
        self.created = 0  # pipes opened so far (acquisitions beyond this were reuses)
        self._idle: list[Pipe] = []

    @property
    def idle(self) -> int:
        return len(self._idle)

    def acquire(self) -> Pipe:
        if self._idle:
            return self._idle.pop()
        pipe = Pipe(self.size)
        self.created += 1
        return pipe

    def release(self, pipe: Pipe) -> None:
        if pipe.filled or len(self._idle) >= self.max_idle:
            pipe.close()
        else:
            self._idle.append(pipe)

    def close(self) -> None:
        for pipe in self._idle:
            pipe.close()
        self._idle.clear()


# One pool per process: pipes belong to no loop or service.
PIPES = PipePool()


class _Flow:
    """One direction: bytes from socket fd `src` through `pipe` to socket fd `dst`."""

    __slots__ = ("src", "dst", "pipe", "left", "eof", "sent", "watching", "unflushed")

    def __init__(
        self, src: int, dst: int, pipe: Pipe, left: int, dst_transport: asyncio.Transport
    ) -> None:
        self.src = src
        self.dst = dst
        self.pipe = pipe
        self.left = left  # bytes still to read from src; -1: until EOF
        self.eof = False
        self.sent = 0  # bytes written to dst
        self.watching = 0  # _READ: reader on src registered; _WRITE: writer on dst
        # The transport owning dst until its write buffer was seen empty: splicing before
        # uvloop flushed it would put our bytes ahead of those.
        self.unflushed: asyncio.Transport | None = dst_transport

    @property
    def finished(self) -> bool:
        return not self.pipe.filled and (self.eof or not self.left)

    def pump(self) -> int:
        """Move what the sockets take now; return what to wait for: _READ, _WRITE, or 0 once
        finished. Raises OSError (ConnectionError on an EOF before `left` bytes)."""
        pipe = self.pipe
        while True:
            read_blocked = False
            if self.left and not self.eof and pipe.filled < pipe.size:
                want = pipe.size - pipe.filled
                if 0 < self.left < want:
                    want = self.left
                try:
                    n = os.splice(self.src, pipe.w, want, flags=_FLAGS)
                except BlockingIOError:  # socket empty, or the pipe is out of page slots
                    read_blocked = True
                else:
                    if not n:
                        if self.left > 0:
                            raise ConnectionError(f"peer closed with {self.left} bytes to go")
                        self.eof = True
                    else:
                        pipe.filled += n
                        if self.left > 0:
                            self.left -= n
            if pipe.filled:
                try:
                    n = os.splice(pipe.r, self.dst, pipe.filled, flags=_FLAGS)
                except BlockingIOError:
                    # Only the write side: a full pipe also makes reads fail with EAGAIN, and
                    # waiting for a readable socket then would spin.
                    return _WRITE
                pipe.filled -= n
                self.sent += n
            if self.finished:
                return 0
            if read_blocked and not pipe.filled:
                return _READ


def _dup(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing():
        raise ConnectionError("transport closed")
    return os.dup(sock.fileno())


class _Splicer:
    """What relays and tunnels share: the dup fds, the pipes, the watches, the ending."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: PipePool,
        transports: tuple[asyncio.Transport, asyncio.Transport],
        done: Done,
    ) -> None:
        self._loop = loop
        self._pool = pool
        self._transports = transports
        self._done = done
        self._fds: list[int] = []
        self._flows: list[_Flow] = []
        self._closed = False

    def _open(self) -> None:
        """Dup every transport's fd; raises OSError (nothing left open) so the caller can copy."""
        try:
            for transport in self._transports:
                self._fds.append(_dup(transport))
        except OSError:
            self._close()
            raise

    def _add_flow(self, src: int, dst: int, left: int, dst_transport: asyncio.Transport) -> _Flow:
        try:
            pipe = self._pool.acquire()
        except OSError:
            self._close()
            raise
        flow = _Flow(src, dst, pipe, left, dst_transport)
        self._flows.append(flow)
        return flow

    def _watch(self, flow: _Flow, mask: int) -> None:
        """Register exactly the readiness `flow` waits for (epoll_ctl only on a change)."""
        loop, had = self._loop, flow.watching
        if mask & _READ and not had & _READ:
            loop.add_reader(flow.src, self._ready, flow)
        elif had & _READ and not mask & _READ:
            loop.remove_reader(flow.src)
        if mask & _WRITE and not had & _WRITE:
            loop.add_writer(flow.dst, self._ready, flow)
        elif had & _WRITE and not mask & _WRITE:
            loop.remove_writer(flow.dst)
        flow.watching = mask

    def _ready(self, flow: _Flow) -> None:
        if self._closed:
            return
        a, b = self._transports
        if a.is_closing() or b.is_closing():
            self._finish(ConnectionError("transport closed during splice"))
            return
        if flow.unflushed is not None:
            if flow.unflushed.get_write_buffer_size():
                self._watch(flow, _WRITE)  # the socket turning writable is when uvloop flushes
                return
            flow.unflushed = None
        before = flow.sent
        try:
            mask = flow.pump()
        except OSError as exc:  # ConnectionError is an OSError
            mask, error = 0, exc
        else:
            error = None
        if flow.sent != before:
            self._progress(flow, flow.sent - before)
            if self._closed:  # the progress callback cancelled us
                return
        if error is not None:
            self._finish(error)
            return
        self._watch(flow, mask)
        if not mask:
            self._flow_finished(flow)

    def _progress(self, flow: _Flow, sent: int) -> None:
        raise NotImplementedError

    def _flow_finished(self, flow: _Flow) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Unregister, close the dups, return the pipes; idempotent, never calls back."""
        if self._closed:
            return
        self._closed = True
        for flow in self._flows:
            self._watch(flow, 0)
            self._pool.release(flow.pipe)
        for fd in self._fds:
            os.close(fd)
        self._flows, self._fds = [], []

    def _finish(self, exc: BaseException | None) -> None:
        if not self._closed:
            self._close()
            self._done(exc)

    def cancel(self) -> None:
        """Stop without calling back (the caller is tearing the connections down)."""
        self._close()

    @property
    def active(self) -> bool:
        return not self._closed


class SpliceRelay(_Splicer):
    """Move exactly `nbytes` from transport `src` to transport `dst`, then call `done(None)`
    with `src` reading again; on failure `done(exc)`, `src` left paused for the caller to close.

    While it runs nobody may write to `dst` or resume reading `src` (flow control included).
    Nothing happens inside start(): the first splice and every callback come from the loop,
    and bytes already buffered in `dst` go out first.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src: asyncio.Transport,
        dst: asyncio.Transport,
        nbytes: int,
        done: Done,
        progress: Progress | None = None,
        pool: PipePool = PIPES,
    ) -> None:
        super().__init__(loop, pool, (src, dst), done)
        self.nbytes = nbytes
        self.moved = 0  # bytes written to dst so far
        self._src, self._dst = src, dst
        self._on_progress = progress

    def start(self) -> None:
        """Raises OSError (EMFILE...) with nothing changed: then relay by copying instead."""
        self._open()
        flow = self._add_flow(self._fds[0], self._fds[1], self.nbytes, self._dst)
        self._src.pause_reading()
        self._loop.call_soon(self._ready, flow)

    def _progress(self, flow: _Flow, sent: int) -> None:
        self.moved += sent
        if self._on_progress is not None:
            self._on_progress(sent)

    def _flow_finished(self, flow: _Flow) -> None:
        self._close()
        if not self._src.is_closing():  # the progress callback may have closed it
            self._src.resume_reading()
        self._done(None)


class SpliceTunnel(_Splicer):
    """Relay both ways between transports `a` and `b` until each direction ends (EOF passed on
    as a half-close), then `done(None)`; the caller closes both. `done(exc)` on a failure."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        a: asyncio.Transport,
        b: asyncio.Transport,
        done: Done,
        to_b: Progress | None = None,
        to_a: Progress | None = None,
        pool: PipePool = PIPES,
    ) -> None:
        super().__init__(loop, pool, (a, b), done)
        self._a, self._b = a, b
        self._counters = (to_b, to_a)

    def start(self) -> None:
        """Raises OSError (EMFILE...) with nothing changed: then relay by copying instead."""
        self._open()
        fa, fb = self._fds
        self._add_flow(fa, fb, -1, self._b)
        self._add_flow(fb, fa, -1, self._a)
        self._a.pause_reading()
        self._b.pause_reading()
        for flow in self._flows:
            self._loop.call_soon(self._ready, flow)

    def _progress(self, flow: _Flow, sent: int) -> None:
        counter = self._counters[self._flows.index(flow)]
        if counter is not None:
            counter(sent)

    def _flow_finished(self, flow: _Flow) -> None:
        _shutdown_write(flow.dst)
        if all(f.finished for f in self._flows):
            self._finish(None)


def _shutdown_write(fd: int) -> None:
    """Pass an EOF on (the socket object borrows fd and gives it back without closing it)."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the peer is gone already; the other direction will report it
    finally:
        sock.detach()
