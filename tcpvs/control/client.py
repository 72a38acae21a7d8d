"""The blocking control-socket client used by tcpvsadm: one request and its reply per call."""

from __future__ import annotations

import socket
from typing import Any

from tcpvs.control.protocol import (
    MAX_LINE,
    PERMISSION_DENIED,
    decode_reply,
    default_socket_path,
    encode_request,
)
from tcpvs.errors import ControlError, DaemonNotRunning

__all__ = ["ControlClient", "default_socket_path"]

DEFAULT_TIMEOUT = 60.0


class ControlClient:
    """Talks to tcpvsd on its control socket.

    `call(op, **args)` returns the operation's result; it raises DaemonNotRunning when nothing
    answers on the socket and ControlError with the daemon's message when it refuses.
    """

    def __init__(self, path: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path or default_socket_path()
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except FileNotFoundError:
            sock.close()
            raise DaemonNotRunning(
                f"tcpvsd is not running (no control socket at {self.path})"
            ) from None
        except ConnectionRefusedError:
            sock.close()
            raise DaemonNotRunning(
                f"tcpvsd is not running (nothing answers on {self.path})"
            ) from None
        except PermissionError:
            sock.close()
            raise ControlError(PERMISSION_DENIED) from None
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        return sock

    def call(self, op: str, **args: Any) -> Any:
        request = encode_request(op, args)
        if len(request) > MAX_LINE:
            raise ControlError(f"request too large for the control socket (over {MAX_LINE} bytes)")
        with self._connect() as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon refused us before reading: its reply is still to be read
            except TimeoutError:
                message = f"tcpvsd did not accept the request within {self.timeout:g} s"
                raise ControlError(message) from None
            return decode_reply(self._read_line(sock))

    def _read_line(self, sock: socket.socket) -> bytes:
        data = bytearray()
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"tcpvsd did not answer within {self.timeout:g} s") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ControlError("tcpvsd closed the connection without answering")
            data += chunk
            if len(data) > MAX_LINE:
                raise ControlError("tcpvsd sent a reply that is too long")
        return bytes(data)
