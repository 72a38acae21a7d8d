"""The defects a user met, each as they met it: an upload that hung on a fresh server
connection, a POST a server received twice, a half-sent body held until the server timeout."""

from __future__ import annotations

import socket

import pytest

from tests.support.client import RawClient, curl


@pytest.mark.parametrize("size", [500_000, 1_000_000])
def test_large_upload_on_a_fresh_server_connection_completes(lab, tmp_path, size):
    port = lab.service(servers=[lab.r1])  # a new service: nothing pooled yet
    upload = tmp_path / "upload.bin"
    upload.write_bytes(bytes(range(256)) * (size // 256))
    done = curl(
        "-H", "Expect:", "--data-binary", f"@{upload}", "-o", str(tmp_path / "echo.bin"),
        "-w", "%{http_code}", f"http://127.0.0.1:{port}/echo",
    )  # fmt: skip
    assert done.stdout == "200", done.stderr
    assert (tmp_path / "echo.bin").read_bytes() == upload.read_bytes()
    assert lab.r1.requests()[-1]["body_len"] == upload.stat().st_size


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /integrity?id={id}&fail=after HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        b"POST /integrity?id={id}&fail=after HTTP/1.1\r\nHost: t\r\n\r\n",  # no length
        b"PATCH /integrity?id={id}&fail=after HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["post-length-0", "post-no-length", "patch"],
)
def test_a_request_the_server_read_then_dropped_is_not_sent_again(lab, request_head):
    """GET /warm pools a server connection; the server reads the POST on it and closes without
    answering. The POST must not be replayed on a new connection (RFC 9110 9.2.2)."""
    port = lab.service(servers=[lab.r1])
    request_id = f"{port}-{request_head[:5].decode().strip()}-{len(request_head)}"
    with RawClient(port) as client:
        client.send(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.response()[0] == 200
        client.send(request_head.replace(b"{id}", request_id.encode()))
        status, _, body = client.response()
    assert (status, body) == (502, b"502 Bad Gateway\n")
    assert [r["id"] for r in lab.r1.requests()].count(request_id) == 1


def test_a_get_on_a_stale_pooled_connection_is_replayed_once(lab):
    """The same failure for a GET (idempotent, no body): replayed once on a fresh connection,
    where the server fails it again: two deliveries, then 502."""
    port = lab.service(servers=[lab.r1])
    request_id = f"{port}-get"
    with RawClient(port) as client:
        client.send(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.response()[0] == 200
        client.send(
            b"GET /integrity?id=%s&fail=after HTTP/1.1\r\nHost: t\r\n\r\n" % request_id.encode()
        )
        assert client.response()[0] == 502
    assert [r["id"] for r in lab.r1.requests()].count(request_id) == 2


def test_a_body_the_client_stops_sending_ends_at_its_half_close(lab):
    """Half of a Content-Length body, then the client half-closes: the request can never
    complete, so it ends now (400), not at server_timeout (60 s)."""
    port = lab.service(servers=[lab.r1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):  # socket timeout: 5 s
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
