"""Bytes are counted once, where they cross a socket: -L --json agrees with what the client
and the servers sent, byte for byte, whatever path the bytes took (parsed, passed along,
spliced, or sent right behind an Upgrade request)."""

from __future__ import annotations

import json
import socket

from tests.support.client import RawClient


def stats(lab, port: int) -> dict:
    listing = json.loads(lab.daemon.ok("-L", "--json"))
    (service,) = [s for s in listing["services"] if s["listen"]["port"] == port]
    return service


def test_bytes_sent_right_behind_an_upgrade_request_are_counted_once(lab):
    port = lab.service(servers=[lab.r1])
    upgrade = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
    request = upgrade + b"hello"  # the tunnel's first bytes in the same segment
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 101 ") and answer.endswith(b"\r\n\r\nhello")
    service = stats(lab, port)
    assert service["stats"]["bytes_in"] == len(request)  # was 72 for 67 sent
    assert service["stats"]["bytes_out"] == len(answer)
    (server,) = service["servers"]
    assert server["stats"]["bytes_out"] == len(answer)


def test_parsed_and_passed_along_bytes_are_counted_alike(lab):
    port = lab.service(servers=[lab.r1])
    requests = [b"GET /big/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in (13, 70_000, 2_000_000)]
    received = 0
    with RawClient(port) as client:
        for request in requests:
            client.send(request)
            status, headers, body = client.response()
            assert status == 200
            received += len(body)
    service = stats(lab, port)
    assert service["stats"]["bytes_in"] == sum(map(len, requests))
    assert service["stats"]["bytes_out"] > received  # heads included
    (server,) = service["servers"]
    assert server["stats"]["bytes_out"] == service["stats"]["bytes_out"]
    assert server["stats"]["bytes_in"] > service["stats"]["bytes_in"]  # X-Forwarded-For added
