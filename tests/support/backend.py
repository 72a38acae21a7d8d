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
  anything else    "NAME METHOD PATH\\n"
Raw mode (--raw): send "NAME\\n", echo bytes, and on the client's half-close send "bye\\n".
It prints "ready PORT" on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools

KINDS = {"echo", "headers", "big", "slow", "cookie", "status", "ws", "chunked", "close"}


class HttpBackend(asyncio.Protocol):
    def __init__(self, name: str, log) -> None:
        self.name = name.encode()
        self.log = log
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

    def data_received(self, data: bytes) -> None:
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
        self.log.write(
            json.dumps(
                {
                    "method": method.decode(),
                    "path": path,
                    "headers": headers,
                    "body_len": len(self.body),
                    "peer": self.peer,
                }
            )
            + "\n"
        )
        self.log.flush()
        body, self.body = bytes(self.body), bytearray()
        asyncio.get_running_loop().create_task(
            self._respond(method, path, headers, body, keep_alive)
        )
        self.url = b""
        self.headers = []

    async def _respond(
        self, method: bytes, path: str, headers, body: bytes, keep_alive: bool
    ) -> None:
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
        if not keep_alive:
            self.transport.close()


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
    args = parser.parse_args()
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    kind = RawBackend if args.raw else HttpBackend
    server = await asyncio.get_running_loop().create_server(
        lambda: kind(args.name, log), args.host, args.port, reuse_address=True
    )
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
