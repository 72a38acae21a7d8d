"""The admin HTTP server: GET /metrics (Prometheus text), / (the stats page), /stats.json.

Every answer is built from one `snapshot` of the table, asked of the same handler the control
socket uses, so with `--workers N` it is the master's sum over the workers, exactly what
`tcpvsadm -L --stats` shows. One request per connection (Connection: close); it serves
operators and scrapers, not users, so simplicity wins over speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from tcpvs.admin.metrics import CONTENT_TYPE, exposition
from tcpvs.errors import ControlError, TableError
from tcpvs.http import HttpError, parse_request_head
from tcpvs.table.addr import Address, format_address

log = logging.getLogger("tcpvsd")

Snapshot = Callable[[], Awaitable[dict[str, Any]]]
DEFAULT_ADMIN_HOST = "127.0.0.1"
MAX_HEAD = 8192
READ_SECONDS = 10.0


def parse_admin_address(text: str) -> Address:
    """`--admin` value: HOST:PORT, [V6]:PORT, or a bare PORT (then loopback: the stats must not
    be published to the world by accident). ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_ADMIN_HOST, text
    host = host.strip("[]") or DEFAULT_ADMIN_HOST
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return Address(host, int(port))


def _page() -> bytes:
    return resources.files("tcpvs.admin").joinpath("page.html").read_bytes()


def _answer(status: str, content_type: str, body: bytes, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body


class AdminServer:
    """Serves the admin pages on `address` from `snapshot()`."""

    def __init__(self, address: Address, snapshot: Snapshot) -> None:
        self.address = address
        self.snapshot = snapshot
        self._server: asyncio.AbstractServer | None = None

    async def open(self) -> None:
        """Listen; OSError (with the address in its message) when the address cannot be used."""
        try:
            self._server = await asyncio.start_server(
                self._serve, self.address.host, self.address.port, reuse_address=True
            )
        except OSError as exc:
            where = format_address(self.address)
            raise OSError(exc.errno, f"admin address {where}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
            writer.write(await self.respond(head))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def respond(self, raw: bytes) -> bytes:
        """The whole answer to one request head."""
        try:
            req = parse_request_head(raw, MAX_HEAD)
        except HttpError as exc:
            return _answer(f"{exc.status} Bad Request", "text/plain", b"bad request\n")
        if req is None:
            return _answer("400 Bad Request", "text/plain", b"bad request\n")
        if req.method not in (b"GET", b"HEAD"):
            return _answer("405 Method Not Allowed", "text/plain", b"GET only\n")
        head_only = req.method == b"HEAD"
        path = req.target.split(b"?", 1)[0]
        if path == b"/":
            return _answer("200 OK", "text/html; charset=utf-8", _page(), head_only)
        if path not in (b"/metrics", b"/stats.json"):
            return _answer("404 Not Found", "text/plain", b"not found\n", head_only)
        try:
            snap = await self.snapshot()
        except (ControlError, TableError) as exc:
            body = f"no snapshot of the table: {exc}\n".encode()
            return _answer("503 Service Unavailable", "text/plain", body, head_only)
        if path == b"/metrics":
            return _answer("200 OK", CONTENT_TYPE, exposition(snap), head_only)
        body = json.dumps(snap).encode()
        return _answer("200 OK", "application/json", body, head_only)
