"""Malformed and hostile HTTP, and failing servers: the right status, the connection closed,
and nothing ambiguous reaching a real server."""

from __future__ import annotations

import time

import pytest

from tests.support.client import RawClient, get
from tests.support.procs import free_port


@pytest.fixture(scope="module")
def port(lab):
    return lab.service({"^/ok": lab.r1})


AMBIGUOUS = {
    "content-length and chunked": b"POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
    b"Content-Length: 4\r\n\r\nabcd",
    "bad chunk size": b"POST /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk without CRLF": b"POST /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhelloXX0\r\n\r\n",
    "obs-fold": b"GET /ok HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n continued\r\n\r\n",
    "space before colon": b"GET /ok HTTP/1.1\r\nHost: t\r\nContent-Length : 0\r\n\r\n",
    "chunked not last": b"POST /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "bare LF": b"GET /ok HTTP/1.1\nHost: t\n\n",
    "no host": b"GET /ok HTTP/1.1\r\n\r\n",
    "garbage request line": b"GET/ok HTTP/1.1\r\nHost: t\r\n\r\n",
}


@pytest.mark.parametrize("name", AMBIGUOUS)
def test_ambiguous_requests_get_400_and_never_reach_a_server(lab, port, name):
    before = len(lab.r1.requests())
    with RawClient(port) as client:
        client.send(AMBIGUOUS[name])
        reply = client.read_all()  # the switch closes the connection
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    time.sleep(0.05)
    assert len(lab.r1.requests()) == before


def test_unsupported_http_version_gets_505(port):
    with RawClient(port) as client:
        client.send(b"GET /ok HTTP/2.0\r\nHost: t\r\n\r\n")
        assert client.read_all().startswith(b"HTTP/1.1 505 ")


def test_oversized_head_gets_431(port):
    with RawClient(port) as client:
        client.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert client.read_all().startswith(b"HTTP/1.1 431 ")


def test_no_rule_matches_gets_503(port):
    assert get(port, "/nothing")[0] == 503


def test_weight_zero_everywhere_gets_503(lab):
    port = lab.service({"^/": lab.r1}, servers=[lab.r1], weights={"r1": 0})
    assert get(port, "/x")[0] == 503


def test_refused_server_falls_over_to_the_next_and_502_when_none_is_left(lab, tmp_path):
    dead = free_port()  # nothing listens there
    d = lab.daemon
    port = free_port()
    d.ok("-A", "-i", "failover", "-s", "rr", "-l", f"127.0.0.1:{port}")
    d.ok("-a", "-i", "failover", "-r", f"127.0.0.1:{dead}")
    d.ok("-a", "-i", "failover", "-r", lab.r2.address)
    d.ok("--add-rule", "-i", "failover", "-p", "^/", "-r", f"127.0.0.1:{dead}")
    d.ok("--add-rule", "-i", "failover", "-p", "^/", "-r", lab.r2.address)
    d.ok("--start", "-i", "failover")
    assert [get(port, f"/{i}")[1]["X-Backend"] for i in range(6)] == ["r2"] * 6
    d.ok("--del-rule", "-i", "failover", "-p", "^/", "-r", lab.r2.address)
    assert get(port, "/gone")[0] in (502, 503)  # refused again (502) or still marked down (503)
    dead2 = free_port()
    d.ok("-a", "-i", "failover", "-r", f"127.0.0.1:{dead2}")
    d.ok("--add-rule", "-i", "failover", "-p", "^/", "-r", f"127.0.0.1:{dead2}")
    assert get(port, "/all-refuse")[0] == 502  # the fresh dead server was tried and refused


def test_slow_head_is_cut_off_with_408(lab):
    port = lab.service({"^/": lab.r1}, servers=[lab.r1], config="    client_timeout = 1")
    with RawClient(port) as client:
        client.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n")  # ... and never the end of the head
        started = time.monotonic()
        reply = client.read_all()
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5


def test_slow_server_gets_504(lab):
    port = lab.service({"^/": lab.r1}, servers=[lab.r1], config="    server_timeout = 1")
    assert get(port, "/slow/4000")[0] == 504


def test_redirect_server_takes_what_no_rule_matches(lab):
    extra = f"    redirect = {lab.r3.address}"
    port = lab.service({"^/ok": lab.r1}, servers=[lab.r1], config=extra)
    assert get(port, "/elsewhere")[1]["X-Backend"] == "r3"


def test_connections_beyond_maxclients_get_503(lab):
    port = lab.service({"^/": lab.r1}, servers=[lab.r1], config="    maxclients = 1")
    with RawClient(port) as first:
        first.send(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
        assert first.response()[0] == 200  # keep-alive: still holds its slot
        with RawClient(port) as second:
            assert second.read_all().startswith(b"HTTP/1.1 503 ")
