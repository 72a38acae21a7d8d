"""The access log: one line per request (raw TCP: per connection), in text or JSON.

Lines are formatted when a request ends and handed, a batch at a time, to a writer thread, so a
slow disk never stalls the event loop; the file is opened O_APPEND, so the workers of
`tcpvsd --workers N` share it line by line, and logrotate's copytruncate just works. `reopen()`
(SIGUSR1) opens the path anew after a rotation that moved the file.

Text layout (docs/observability.md), like HAProxy's HTTP log:

  CLIENT:PORT [DATE] SERVICE SERVER "METHOD URI VERSION" STATUS BYTES_IN BYTES_OUT
  Tq/Tc/Tr/Tt RETRIES CAUSE

Timers in milliseconds, -1 for a stage the request never reached: Tq from its first byte to a
complete head, Tc from then to a ready server connection, Tr from then to the answer's head,
Tt from the first byte to the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from tcpvs.exchange.http1 import HttpExchange
from tcpvs.observe.writer import Writer
from tcpvs.table.counters import CAUSES, OK

if TYPE_CHECKING:
    from tcpvs.exchange.base import Exchange
    from tcpvs.table.model import RealServer

FORMATS = ("text", "json")
FLUSH_SECONDS = 0.2  # the longest a line waits in memory
FLUSH_LINES = 512  # or this many lines, whichever comes first
# Bytes of a URI that would break a quoted field or a terminal: escaped as \xNN.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 34, 92, *range(127, 256))}


def _ms(start: float, stop: float) -> int:
    """Milliseconds from `start` to `stop`; -1 when either stage was never reached."""
    return int((stop - start) * 1000 + 0.5) if start and stop else -1


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AccessLog:
    """The access log of a process: `request()` is called by exchanges as requests end."""

    def __init__(self, path: str, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"access log format must be one of {', '.join(FORMATS)}")
        self.path = path
        self.json = fmt == "json"
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._names: dict[tuple[str, int], str] = {}
        self._second, self._seconds_text = -1, ""
        self._wall = 0.0
        self._set_wall()
        self._writer = Writer(path)

    def request(
        self,
        exchange: Exchange,
        server: RealServer | None,
        begin: float,
        end: float,
        status: int,
        cause: int,
    ) -> None:
        """Log the request `exchange` had in hand (see Exchange._record). This runs once per
        request on the event loop: no call here that a field does not need."""
        http = isinstance(exchange, HttpExchange)
        # (None too before an HTTP head was read whole)
        req = exchange.req if isinstance(exchange, HttpExchange) else None
        chosen = server or exchange.server or (exchange.tried[-1] if exchange.tried else None)
        server_name = None if chosen is None else self._name(chosen.address)
        received, sent = exchange.port.transferred()
        t_ready = exchange.t_ready if http else begin
        client = exchange.ctx.client or ("", 0)
        ident = exchange.site.service.ident
        wall = self._wall + begin
        bytes_in = exchange.req_bytes if http else received
        bytes_out = sent - exchange.out_mark
        tq = _ms(begin, t_ready) if http else 0
        tc = _ms(t_ready, exchange.t_connect)
        tr = _ms(exchange.t_connect, exchange.t_response)
        tt = _ms(begin, end)
        if req is None:
            method = uri = version = None
        else:
            method = req.method.decode("latin-1")
            uri = req.target.decode("latin-1").translate(_ESCAPES)
            version = f"HTTP/1.{req.version % 10}"
        if self.json:
            line = json.dumps(
                {
                    "time": round(wall, 3),
                    "client": client[0],
                    "client_port": client[1],
                    "service": ident,
                    "server": server_name,
                    "method": method,
                    "uri": uri,
                    "version": version,
                    "status": status or None,
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                    "tq_ms": tq,
                    "tc_ms": tc,
                    "tr_ms": tr,
                    "tt_ms": tt,
                    "retries": exchange.retries,
                    "cause": None if cause == OK else CAUSES[cause],
                    "protocol": "http" if http else "tcp",
                }
            )
        else:
            if not http:
                request = "-"
            elif req is None:
                request = '"<BADREQ>"'
            else:
                request = f'"{method} {uri} {version}"'
            line = (
                f"{_address(client[0], client[1])} [{self._stamp(wall)}] {ident} "
                f"{server_name or '-'} {request} {status or '-'} {bytes_in} {bytes_out} "
                f"{tq}/{tc}/{tr}/{tt} {exchange.retries} {CAUSES[cause]}"
            )
        self.lines.append(line)
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def _name(self, address: Any) -> str:
        """`host:port` of a server (remembered: the same few servers answer every request)."""
        name = self._names.get(address)
        if name is None:
            name = self._names[address] = _address(address[0], address[1])
        return name

    def _stamp(self, wall: float) -> str:
        """`29/Nov/2026:11:23:07.546`; the part up to the seconds is made once a second."""
        second = int(wall)
        if second != self._second:
            self._second = second
            self._seconds_text = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(second))
        return f"{self._seconds_text}.{int(wall * 1000) % 1000:03d}"

    def _set_wall(self) -> None:
        """Wall-clock seconds = this + the requests' clock (Site.clock: monotonic), refreshed
        at each flush so that a step of the wall clock shows within a batch."""
        self._wall = time.time() - time.monotonic()

    def flush(self) -> None:
        """Hand the lines so far to the writer thread."""
        self._set_wall()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            self._writer.write(("\n".join(self.lines) + "\n").encode("utf-8", "replace"))
            self.lines.clear()

    def reopen(self) -> None:
        """Open the file anew (after logrotate moved it): SIGUSR1."""
        self.flush()
        self._writer.reopen()

    def close(self) -> asyncio.Future[None]:
        """Write what is left and stop the writer thread (await the result: it has ended)."""
        self.flush()
        self._writer.stop()
        return asyncio.get_running_loop().run_in_executor(None, self._writer.join)
