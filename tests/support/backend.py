"""A real server process for the end-to-end tests: `python -m tests.support.backend NAME`.

HTTP mode parses with httptools (llhttp, an independent parser), stamps `X-Backend: NAME`,
and appends one JSON line per request it receives to --log, so tests can prove what did (or
did not) reach a server. Paths:
  (the first of these keywords anywhere in the path decides)
  /echo            the request body back (any method), X-Body-Length
  /headers         the request headers as JSON
  /big/N           N bytes (Content-Length)       /chunked/N  N chunks of "chunk\\n"
  /close           a body delimited by closing the connection
  /status/NNN      that status (no body for 1xx/204/304)
  /slow/MS         answer after MS milliseconds
  /cookie          sets an application cookie
  /ws              Upgrade: echo -> 101, then echo raw bytes (a tunnel)
  /integrity       the integrity suite's answers (tests/support/integrity.py): query
                   resp=N (N deterministic bytes of the request id), te=chunked, fail=after
                   (read the request, then close without answering) or fail=mid (close
                   halfway through the body, always short of its end); X-Req-Sha256 is the
                   request body's sha256
  anything else    "NAME METHOD PATH\\n"
Every log line has the request's `sha256` (of its body) and `id` (the query's id=, if any).
--idle-close S closes a keep-alive connection left idle S seconds, as servers do.
--hang-up logs every request, then closes its connection without answering (a broken server).
--tls PEM serves HTTP over TLS with the certificate chain and key in PEM.
Raw mode (--raw): send "NAME\\n", echo bytes, and on the client's half-close send "bye\\n".
It prints "ready PORT" on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import ssl
from urllib.parse import parse_qs, urlsplit

import httptools

KINDS = {"echo", "headers", "big", "slow", "cookie", "status", "ws", "chunked", "close"}


def integrity_body(request_id: str, size: int) -> bytes:
    """The response body the integrity suite expects for a request (any size, cheap)."""
    return hashlib.shake_128(request_id.encode()).digest(size) if size else b""


def chunk_sizes(request_id: str, total: int) -> list[int]:
    """Varied chunk sizes (1 B .. 64 KiB) summing to `total`, the same for the same id."""
    seed = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "little")
    sizes = []
    while total > 0:
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        size = min(total, 1 + (seed >> 33) % (1 << (1 + (seed >> 20) % 16)))
        sizes.append(size)
        total -= size
    return sizes


def chunked(request_id: str, body: bytes) -> bytes:
    out, at = [], 0
    for size in chunk_sizes(request_id, len(body)):
        out.append(b"%x\r\n%s\r\n" % (size, body[at : at + size]))
        at += size
    return b"".join(out) + b"0\r\n\r\n"


class HttpBackend(asyncio.Protocol):
    def __init__(self, name: str, log, idle_close: float = 0, hang_up: bool = False) -> None:
        self.name = name.encode()
        self.log = log
        self.idle_close = idle_close
        self.hang_up = hang_up
        self.idle_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.tunnel = False
        self.peer = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")[1]
        self.idle()

    def idle(self) -> None:
        """Waiting for a request: close after --idle-close seconds of nothing."""
        if self.idle_close:
            self.idle_timer = asyncio.get_running_loop().call_later(
                self.idle_close, self.transport.close
            )

    def data_received(self, data: bytes) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if self.tunnel:
            self.transport.write(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0]
            self.tunnel = True
            if offset < len(data):
                self.transport.write(data[offset:])
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if any(n.lower() == b"expect" and v.lower() == b"100-continue" for n, v in self.headers):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.decode("latin-1")
        keep_alive = self.parser.should_keep_alive()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]
        query = parse_qs(urlsplit(path).query)
        self.log.write(
            json.dumps(
                {
                    "method": method.decode(),
                    "path": path,
                    "headers": headers,
                    "body_len": len(self.body),
                    "sha256": hashlib.sha256(self.body).hexdigest(),
                    "id": query.get("id", [None])[0],
                    "peer": self.peer,
                }
            )
            + "\n"
        )
        self.log.flush()
        if self.hang_up:
            self.transport.close()
            return
        body, self.body = bytes(self.body), bytearray()
        asyncio.get_running_loop().create_task(
            self._respond(method, path, headers, body, keep_alive)
        )
        self.url = b""
        self.headers = []

    async def _respond(
        self, method: bytes, path: str, headers, body: bytes, keep_alive: bool
    ) -> None:
        if path.startswith("/integrity"):
            self._integrity(method, path, body, keep_alive)
            return
        # The first known keyword anywhere in the path decides (so /images/slow/300 is slow).
        parts = path.split("?")[0].split("/") + [""]
        index = next((i for i, part in enumerate(parts) if part in KINDS), -1)
        kind, arg = parts[index], parts[index + 1]
        status, extra, payload = 200, [], b"%s %s %s\n" % (self.name, method, path.encode())
        if kind == "echo":
            payload = body
            extra.append(b"X-Body-Length: %d" % len(body))
        elif kind == "headers":
            payload = json.dumps(headers).encode()
        elif kind == "big":
            payload = b"x" * int(arg)
        elif kind == "slow":
            await asyncio.sleep(int(arg) / 1000)
        elif kind == "cookie":
            extra.append(b"Set-Cookie: app=1; Path=/")
        elif kind == "status":
            status = int(arg)
        elif kind == "ws":
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
                b"Connection: Upgrade\r\nX-Backend: %s\r\n\r\n" % self.name
            )
            return
        elif kind == "chunked":
            head = b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            chunks = b"".join(b"6\r\nchunk\n\r\n" for _ in range(int(arg)))
            self.transport.write(head % self.name + chunks + b"0\r\n\r\n")
            return
        elif kind == "close":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\nConnection: close\r\n\r\n" % self.name
                + payload
            )
            self.transport.close()
            return
        lines = [b"HTTP/1.1 %d X" % status, b"X-Backend: " + self.name, *extra]
        no_body = status < 200 or status in (204, 304)
        if not no_body:
            lines.append(b"Content-Length: %d" % len(payload))
        if not keep_alive:
            lines.append(b"Connection: close")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        self.transport.write(head if no_body or method == b"HEAD" else head + payload)
        self.answered(keep_alive)

    def answered(self, keep_alive: bool) -> None:
        if not keep_alive:
            self.transport.close()
        else:
            self.idle()

    def _integrity(self, method: bytes, path: str, body: bytes, keep_alive: bool) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        request_id, fail = query["id"], query.get("fail")
        if fail == "after":
            self.transport.close()
            return
        payload = integrity_body(request_id, int(query.get("resp", "0")))
        lines = [
            b"HTTP/1.1 200 OK",
            b"X-Backend: " + self.name,
            b"X-Req-Sha256: " + hashlib.sha256(body).hexdigest().encode(),
        ]
        if query.get("te") == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
            framed = chunked(request_id, payload)
        else:
            # cut halfway: announce a byte more, so that even an empty body is cut short
            lines.append(b"Content-Length: %d" % (len(payload) + (fail == "mid")))
            framed = payload
        if not keep_alive:
            lines.append(b"Connection: close")
        if method == b"HEAD":
            framed = b""
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if fail == "mid":
            self.transport.write(head + framed[: len(framed) // 2])  # chunked: no last chunk
            self.transport.abort()
            return
        self.transport.write(head + framed)
        self.answered(keep_alive)


class RawBackend(asyncio.Protocol):
    def __init__(self, name: str, log) -> None:
        self.name = name.encode()
        self.log = log

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.log.write(json.dumps({"connect": True}) + "\n")
        self.log.flush()
        transport.write(self.name + b"\n")

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.transport.write(b"bye\n")
        self.transport.close()
        return True


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", default="/dev/null")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--idle-close", type=float, default=0)
    parser.add_argument("--hang-up", action="store_true")
    parser.add_argument("--tls", metavar="PEM")
    args = parser.parse_args()
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def protocol() -> asyncio.Protocol:
        if args.raw:
            return RawBackend(args.name, log)
        return HttpBackend(args.name, log, args.idle_close, args.hang_up)

    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls)
    server = await asyncio.get_running_loop().create_server(
        protocol, args.host, args.port, reuse_address=True, ssl=context
    )
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
