"""The control socket inside tcpvsd: a Unix socket (mode 0600, peers checked with SO_PEERCRED)
that runs each JSON-lines request as a Switch call and answers with its result or its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from tcpvs._version import __version__
from tcpvs.control.protocol import (
    MAX_LINE,
    PERMISSION_DENIED,
    decode_request,
    default_socket_path,
    encode_error,
    encode_result,
)
from tcpvs.errors import ConfigError, ControlError, TableError

__all__ = [
    "ControlSocket",
    "Dispatcher",
    "Handler",
    "claim_control_path",
    "close_control_server",
    "default_socket_path",
    "listen_control",
    "start_control_server",
    "switch_handler",
]

log = logging.getLogger("tcpvs.control")
# How long to wait for a daemon that may still answer on an existing socket file.
PROBE_SECONDS = 2.0
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(sock: Any) -> int:
    """The user id of the process at the other end of a Unix socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(data)[1]


async def _clear_stale_socket(path: str) -> None:
    """Remove a socket file no daemon answers on; ControlError if one does (or if not a socket)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path} exists and is not a socket")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), PROBE_SECONDS)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"cannot check the existing control socket {path}: {exc}") from None
    writer.close()
    raise ControlError(f"another tcpvsd is already running (it answers on {path})")


def _file_id(path: str) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def _bind(path: str) -> tuple[socket.socket, tuple[int, int]]:
    """A Unix socket bound to `path`, and the identity of the file the bind created."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)  # the file is created 0600: no window with wider access
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        return sock, _file_id(path)
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot create the control socket {path}: {exc.strerror}") from None


class ControlSocket:
    """A listening control socket and the socket file its bind created."""

    def __init__(self, server: asyncio.AbstractServer, path: str, file_id: tuple[int, int]) -> None:
        self.server = server
        self.path = path
        self.file_id = file_id

    def close(self) -> None:
        """Stop accepting and remove the socket file, if it is still the one created here:
        another daemon started since (after ours was removed by hand) owns the file there."""
        self.server.close()
        with contextlib.suppress(FileNotFoundError):
            if _file_id(self.path) == self.file_id:
                os.unlink(self.path)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


# What a dispatcher runs for each request: (op, checked args) -> a JSON-ready result, or
# raises TableError / ConfigError / ControlError with the message the client gets.
Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


def switch_handler(switch: Any) -> Handler:
    """Run each request as the Switch method of the same name (`version` answers itself)."""

    async def call(op: str, args: dict[str, Any]) -> Any:
        if op == "version":
            return __version__
        result = getattr(switch, op)(**args)
        if inspect.isawaitable(result):
            result = await result
        return result

    return call


class Dispatcher:
    """Serves control connections, one request at a time per connection, through `handler`.

    Requests of all connections run one after the other, so an operation that awaits (a
    listener being opened) never interleaves with another change to the table.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.lock = asyncio.Lock()
        self.uid = os.geteuid()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A client of the control socket: only root and our own user are served."""
        uid = peer_uid(writer.get_extra_info("socket"))
        if uid in (0, self.uid):
            await self.serve_stream(reader, writer)
            return
        log.warning("control socket: refused a request from uid %d", uid)
        try:
            writer.write(encode_error(PERMISSION_DENIED))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            await _close(writer)

    async def serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer request lines on an already trusted stream until it ends, then close it."""
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE: the stream cannot be resynchronised
                    writer.write(encode_error(f"request longer than {MAX_LINE} bytes"))
                    await writer.drain()
                    return
                if not line:
                    return
                writer.write(await self.reply(line))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            await _close(writer)

    async def reply(self, line: bytes) -> bytes:
        try:
            op, args = decode_request(line)
            async with self.lock:
                return encode_result(await self.handler(op, args))
        except (TableError, ConfigError, ControlError, ValueError) as exc:
            return encode_error(str(exc))
        except Exception:  # the daemon keeps serving; the client never sees a traceback
            log.exception("control socket: request failed: %r", line[:200])
            return encode_error("internal error in tcpvsd (see its log)")


async def claim_control_path(path: str) -> None:
    """Make the socket's directory (0755) and remove a stale socket file; ControlError if
    another daemon answers on `path` or the directory cannot be made."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise ControlError(f"cannot create {parent}: {exc.strerror}") from None
    await _clear_stale_socket(path)


async def listen_control(dispatcher: Dispatcher, path: str) -> ControlSocket:
    """Serve `dispatcher` on the Unix socket `path` (see claim_control_path)."""
    path = os.fspath(path)
    await claim_control_path(path)
    sock, file_id = _bind(path)
    server = await asyncio.start_unix_server(dispatcher.serve, sock=sock, limit=MAX_LINE)
    return ControlSocket(server, path, file_id)


async def start_control_server(switch: Any, path: str | None = None) -> ControlSocket:
    """Serve `switch` on the Unix socket `path` (default: default_socket_path()).

    Creates the parent directory (0755) if missing and replaces a stale socket file, but raises
    ControlError if another daemon answers on it or the socket cannot be created.
    """
    dispatcher = Dispatcher(switch_handler(switch))
    return await listen_control(dispatcher, path or default_socket_path())


async def close_control_server(control: ControlSocket) -> None:
    """Stop accepting, remove the socket file (if it is still ours) and wait (at most 1 s)
    for the server to close."""
    control.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(control.server.wait_closed(), 1.0)
