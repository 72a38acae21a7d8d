"""Zero-copy with splice(2): one direction of bytes moves socket -> pipe -> socket in the
kernel instead of through Python bytes, driven by the running uvloop loop. Linux only. The
relays (tcpvs/proxy/relay.py) decide when; this module only knows how.

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


class SpliceFlow:
    """One direction in the kernel: from transport `src` to transport `dst`, `nbytes` of them
    (-1: until `src` ends, the end then passed on to `dst` as a half-close), then
    `done(None)`; `done(exc)` on a failure (ConnectionError for an end before `nbytes`).

    `progress(n)` reports bytes written to `dst`. While it runs, nobody may read `src`
    (the caller pauses its transport) or write to `dst`; bytes already buffered in `dst`'s
    transport go out first. Nothing happens inside start(): every splice and callback comes
    from the loop.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src: asyncio.Transport,
        dst: asyncio.Transport,
        nbytes: int,
        progress: Progress,
        done: Done,
        pool: PipePool = PIPES,
    ) -> None:
        self._loop = loop
        self._transports = (src, dst)
        self._nbytes = nbytes
        self._progress = progress
        self._done = done
        self._pool = pool
        self._fds: list[int] = []
        self._flow: _Flow | None = None
        self._closed = False

    def start(self) -> None:
        """Raises OSError (EMFILE...) with nothing left open: then copy instead."""
        try:
            for transport in self._transports:
                self._fds.append(_dup(transport))
            pipe = self._pool.acquire()
        except OSError:
            self._close()
            raise
        src, dst = self._fds
        self._flow = _Flow(src, dst, pipe, self._nbytes, self._transports[1])
        self._loop.call_soon(self._ready)

    def _watch(self, mask: int) -> None:
        """Register exactly the readiness the flow waits for (epoll_ctl only on a change)."""
        flow = self._flow
        assert flow is not None
        loop, had = self._loop, flow.watching
        if mask & _READ and not had & _READ:
            loop.add_reader(flow.src, self._ready)
        elif had & _READ and not mask & _READ:
            loop.remove_reader(flow.src)
        if mask & _WRITE and not had & _WRITE:
            loop.add_writer(flow.dst, self._ready)
        elif had & _WRITE and not mask & _WRITE:
            loop.remove_writer(flow.dst)
        flow.watching = mask

    def _ready(self) -> None:
        flow = self._flow
        if self._closed or flow is None:
            return
        src, dst = self._transports
        if src.is_closing() or dst.is_closing():
            self._finish(ConnectionError("transport closed during splice"))
            return
        if flow.unflushed is not None:
            if flow.unflushed.get_write_buffer_size():
                self._watch(_WRITE)  # the socket turning writable is when uvloop flushes
                return
            flow.unflushed = None
        before = flow.sent
        error: OSError | None = None
        try:
            mask = flow.pump()
        except OSError as exc:  # ConnectionError is an OSError
            mask, error = 0, exc
        if flow.sent != before:
            self._progress(flow.sent - before)
            if self._closed:  # the progress callback cancelled us
                return
        if error is not None:
            self._finish(error)
            return
        self._watch(mask)
        if not mask:
            if flow.eof:
                _shutdown_write(flow.dst)
            self._finish(None)

    def _close(self) -> None:
        """Unregister, close the dups, return the pipe; idempotent, never calls back."""
        if self._closed:
            return
        self._closed = True
        if self._flow is not None:
            self._watch(0)
            self._pool.release(self._flow.pipe)
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def _finish(self, exc: BaseException | None) -> None:
        if not self._closed:
            self._close()
            self._done(exc)

    def cancel(self) -> None:
        """Stop without calling back (the caller is tearing the connection down)."""
        self._close()

    @property
    def active(self) -> bool:
        return not self._closed


def _shutdown_write(fd: int) -> None:
    """Pass an EOF on (the socket object borrows fd and gives it back without closing it)."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the peer is gone already; the other direction will report it
    finally:
        sock.detach()
