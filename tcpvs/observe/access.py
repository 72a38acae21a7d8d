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
import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from tcpvs.table.counters import CAUSES, OK

if TYPE_CHECKING:
    from tcpvs.exchange.base import Exchange
    from tcpvs.table.model import RealServer

log = logging.getLogger("tcpvsd")

FORMATS = ("text", "json")
FLUSH_SECONDS = 0.2  # the longest a line waits in memory
FLUSH_LINES = 512  # or this many lines, whichever comes first
_REOPEN = object()  # the writer's signal to open the file anew
# Bytes of a URI that would break a quoted field or a terminal: escaped as \xNN.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 34, 92, *range(127, 256))}


def _ms(start: float, stop: float) -> int:
    return round((stop - start) * 1000) if start and stop else -1


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server_of(exchange: Exchange, server: RealServer | None) -> str | None:
    chosen = server or exchange.server or (exchange.tried[-1] if exchange.tried else None)
    return None if chosen is None else _address(*chosen.address)


class _Writer(threading.Thread):
    """Writes queued batches to the file (or stderr for "-"), in its own thread."""

    def __init__(self, path: str) -> None:
        super().__init__(name="tcpvs-access-log", daemon=True)
        self.path = path
        self.batches: queue.SimpleQueue[Any] = queue.SimpleQueue()  # bytes, _REOPEN, None
        self.fd = 2 if path == "-" else self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def run(self) -> None:
        while (batch := self.batches.get()) is not None:
            try:
                if batch is _REOPEN:
                    if self.path != "-":
                        fd, self.fd = self.fd, self._open()
                        os.close(fd)
                    continue
                view = memoryview(batch)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:
                log.error("access log %s: %s", self.path, exc)
        if self.fd != 2:
            os.close(self.fd)


class AccessLog:
    """The access log of a process: `request()` is called by exchanges as requests end."""

    def __init__(self, path: str, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"access log format must be one of {', '.join(FORMATS)}")
        self.path = path
        self.json = fmt == "json"
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writer = _Writer(path)  # opened now: a bad path fails at start, not later
        self._writer.start()

    def request(
        self,
        exchange: Exchange,
        server: RealServer | None,
        begin: float,
        end: float,
        status: int,
        cause: int,
    ) -> None:
        """Log the request `exchange` had in hand (see Exchange._record)."""
        site = exchange.site
        received, sent = exchange.port.transferred()
        req = getattr(exchange, "req", None)  # HTTP only; None before a head was read whole
        http = hasattr(exchange, "req")
        client = exchange.ctx.client
        t_ready = exchange.t_ready if http else begin
        fields = {
            "time": time.time() - (end - begin),
            "client": client[0] if client else "",
            "client_port": client[1] if client else 0,
            "service": site.service.ident,
            "server": _server_of(exchange, server),
            "method": None if req is None else req.method.decode("latin-1"),
            "uri": None if req is None else req.target.decode("latin-1").translate(_ESCAPES),
            "version": None if req is None else f"HTTP/1.{req.version % 10}",
            "status": status or None,
            "bytes_in": exchange.req_bytes if http else received,
            "bytes_out": sent - exchange.out_mark,
            "tq_ms": _ms(begin, t_ready) if http else 0,
            "tc_ms": _ms(t_ready, exchange.t_connect),
            "tr_ms": _ms(exchange.t_connect, exchange.t_response),
            "tt_ms": _ms(begin, end),
            "retries": exchange.retries,
            "cause": None if cause == OK else CAUSES[cause],
            "protocol": "http" if http else "tcp",
        }
        self.lines.append(json.dumps(fields) if self.json else self._text(fields))
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    @staticmethod
    def _text(f: dict[str, Any]) -> str:
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(f["time"]))
        millis = int(f["time"] * 1000) % 1000
        if f["protocol"] == "tcp":
            request = "-"
        elif f["method"] is None:
            request = '"<BADREQ>"'
        else:
            request = f'"{f["method"]} {f["uri"]} {f["version"]}"'
        return (
            f"{_address(f['client'], f['client_port'])} [{stamp}.{millis:03d}] {f['service']} "
            f"{f['server'] or '-'} {request} {f['status'] or '-'} {f['bytes_in']} "
            f"{f['bytes_out']} {f['tq_ms']}/{f['tc_ms']}/{f['tr_ms']}/{f['tt_ms']} "
            f"{f['retries']} {f['cause'] or '-'}"
        )

    def flush(self) -> None:
        """Hand the lines so far to the writer thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            self._writer.batches.put(("\n".join(self.lines) + "\n").encode("utf-8", "replace"))
            self.lines.clear()

    def reopen(self) -> None:
        """Open the file anew (after logrotate moved it): SIGUSR1."""
        self.flush()
        self._writer.batches.put(_REOPEN)

    async def close(self) -> None:
        """Write what is left and stop the writer thread."""
        self.flush()
        self._writer.batches.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
