"""HTTP through a real tcpvsd to real servers: routing, keep-alive, pipelining, bodies,
interim and bodiless responses, HTTP/1.0, Connection: close and Upgrade tunnels."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.client import RawClient, curl, get


@pytest.fixture(scope="module")
def port(lab):
    return lab.service({"^/images/": lab.r1, "^/html/": lab.r2, ".*": lab.r3})


def test_every_request_on_a_keepalive_connection_is_routed_by_its_own_uri(port):
    with RawClient(port) as client:
        for path, name in [
            ("/images/a", "r1"),
            ("/html/b", "r2"),
            ("/c", "r3"),
            ("/images/d", "r1"),
        ]:
            client.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers, body = client.response()
            assert (status, headers["X-Backend"], body) == (
                200,
                name,
                f"{name} GET {path}\n".encode(),
            )


def test_pipelined_requests_are_answered_in_order(port):
    paths = ["/images/slow", "/html/1", "/x/2", "/images/3"]
    with RawClient(port) as client:
        client.send(
            b"GET /images/slow/300 HTTP/1.1\r\nHost: t\r\n\r\n"
            + b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in paths[1:])
        )
        got = [client.response()[1]["X-Backend"] for _ in paths]
    assert got == ["r1", "r2", "r3", "r1"]


def test_server_connections_are_pooled_and_reused(lab, port):
    before = len(lab.r2.requests())
    for i in range(20):
        assert get(port, f"/html/{i}")[0] == 200
    seen = lab.r2.requests()[before:]
    assert len(seen) == 20
    assert len({r["peer"] for r in seen}) < 5  # 20 client connections, few server ones


def test_forwarded_for_is_added(port):
    status, _, body = get(port, "/headers")
    headers = {name.lower(): value for name, value in json.loads(body)}
    assert headers["x-forwarded-for"] == "127.0.0.1"


def test_content_length_bodies_both_ways(port):
    payload = bytes(range(256)) * 1000
    status, headers, body = get(port, "/echo", method="POST", body=payload)
    assert status == 200 and body == payload and headers["X-Body-Length"] == str(len(payload))


def test_chunked_request_body_is_relayed(port):
    with RawClient(port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        )
        status, _, body = client.response()
        assert (status, body) == (200, b"hello world")
        client.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")  # framing ended where it should
        assert client.response()[2] == b"r3 GET /again\n"


def test_chunked_and_large_responses(port):
    assert get(port, "/chunked/5")[2] == b"chunk\n" * 5
    assert len(get(port, "/big/3000000")[2]) == 3000000


def test_head_204_304_have_no_body_and_keep_the_connection(port):
    with RawClient(port) as client:
        client.send(b"HEAD /big/5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.response(method="HEAD")
        assert (status, headers["Content-Length"], body) == (200, "5000", b"")
        for code in (204, 304):
            client.send(f"GET /status/{code} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            assert client.response()[:3:2] == (code, b"")
        client.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.response()[2] == b"r3 GET /after\n"


def test_expect_100_continue_is_relayed_before_the_body(port):
    with RawClient(port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        # the interim response arrives before the body is sent (http.client would skip it)
        assert client.sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(b"data")
        assert client.response()[:3:2] == (200, b"data")


def test_connection_close_ends_the_connection(port):
    with RawClient(port) as client:
        client.send(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        reply = client.read_all()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"r3 GET /x\n")


def test_http10_clients(port):
    with RawClient(port) as client:
        client.send(b"GET /ten HTTP/1.0\r\n\r\n")
        assert client.read_all().endswith(b"r3 GET /ten\n")  # closed after one response
    with RawClient(port) as client:
        for i in range(2):
            client.send(f"GET /ka{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            assert client.response()[2] == f"r3 GET /ka{i}\n".encode()


def test_close_delimited_response(port):
    status, headers, body = get(port, "/close")
    assert (status, body) == (200, b"r3 GET /close\n")


def test_upgrade_becomes_a_tunnel(port):
    with RawClient(port) as client:
        client.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        assert client.response()[0] == 101
        client.send(b"raw bytes \x00\xff both ways")
        assert client.sock.recv(100) == b"raw bytes \x00\xff both ways"
        client.sock.shutdown(socket.SHUT_WR)


def test_curl_sees_routing(port):
    out = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/images/x")
    assert out.stdout == "200"


def test_a_spliced_body_arrives_whole_and_the_connection_goes_on(port):
    size = 3 * 1024 * 1024 + 7  # above the splice threshold, not a multiple of the pipe size
    with RawClient(port) as client:
        client.send(
            f"GET /images/big/{size} HTTP/1.1\r\nHost: t\r\n\r\n"
            "GET /html/after HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        )
        status, headers, body = client.response()
        assert (status, headers["X-Backend"], len(body)) == (200, "r1", size)
        assert body == b"x" * size
        status, headers, body = client.response()
        assert (status, headers["X-Backend"], body) == (200, "r2", b"r2 GET /html/after\n")


def test_a_client_sending_ahead_during_a_spliced_body_is_paused(port):
    # While a large body is spliced to a client that does not read, the client pipelines far
    # more than tcpvsd buffers per connection (MAX_PENDING, 256 KiB): tcpvsd must stop reading
    # it, so the client's send blocks once the kernel buffers are full, instead of every byte
    # being taken into tcpvsd's memory.
    flood = b"GET /html/x HTTP/1.1\r\nHost: t\r\n\r\n" * 1_000_000  # 34 MB
    with RawClient(port, timeout=3) as client:
        client.send(b"GET /images/big/8388608 HTTP/1.1\r\nHost: t\r\n\r\n")
        client.sock.recv(1)  # the response has started: the splice runs
        with pytest.raises(TimeoutError):
            client.send(flood)
