"""Schedulers seen from outside: raw TCP relay for rule-less services, and each scheduler's
distribution of real requests or connections over real servers."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter

import pytest

from tcpvs.proxy.splice import SPLICE_THRESHOLD
from tests.support.client import get, raw_exchange
from tests.support.procs import free_port


@pytest.fixture(scope="module")
def raw_servers(tmp_path_factory):
    from tests.support.procs import start_backend, stop

    tmp = tmp_path_factory.mktemp("raw")
    servers = [start_backend(tmp, name, raw=True) for name in ("t1", "t2")]
    yield servers
    for s in servers:
        stop(s.proc)


def raw_service(lab, scheduler, servers, weights=(1, 1)) -> int:
    d, port = lab.daemon, free_port()
    ident = f"raw{port}"
    d.ok("-A", "-i", ident, "-s", scheduler, "-l", f"127.0.0.1:{port}")
    for server, weight in zip(servers, weights, strict=True):
        d.ok("-a", "-i", ident, "-r", server.address, "-w", str(weight))
    d.ok("--start", "-i", ident)
    return port


@pytest.mark.parametrize("scheduler", ["wlc", "rr", "wrr", "lc"])
def test_rule_less_services_relay_raw_tcp_with_half_close(lab, raw_servers, scheduler):
    port = raw_service(lab, scheduler, raw_servers)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    banner = sock.recv(3)
    assert banner in (b"t1\n", b"t2\n")  # not HTTP at all: the server speaks first
    sock.sendall(b"\x00binary\xff")
    assert sock.recv(100) == b"\x00binary\xff"
    sock.shutdown(socket.SHUT_WR)  # half-close: the server still answers, then closes
    rest = b""
    while chunk := sock.recv(100):
        rest += chunk
    assert rest == b"bye\n"
    sock.close()


def test_a_long_raw_tunnel_goes_on_by_splice_and_loses_nothing(lab, raw_servers):
    # The first SPLICE_THRESHOLD bytes (both ways together) are copied, the rest spliced.
    port = raw_service(lab, "rr", raw_servers)
    payload = os.urandom(6 * SPLICE_THRESHOLD + 7)
    banner, rest = raw_exchange(port, payload)
    assert banner in (b"t1\n", b"t2\n")
    assert len(rest) == len(payload) + 4 and rest == payload + b"bye\n"
    service = json.loads(lab.daemon.ok("-L", "-i", f"raw{port}", "--json"))["services"][0]
    assert service["stats"]["bytes_in"] == len(payload)
    assert service["stats"]["bytes_out"] == len(banner + rest)
    # the tunnel is over: nothing counted as still open (the test does not wait for a close)
    assert [server["stats"]["conns"] for server in service["servers"]] == [0, 0]


def test_wlc_spreads_open_connections_by_weight(lab, raw_servers):
    port = raw_service(lab, "wlc", raw_servers, weights=(3, 1))
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    counts = Counter(sock.recv(3) for sock in held)  # each waits until its server spoke
    for sock in held:
        sock.close()
    assert counts == {b"t1\n": 30, b"t2\n": 10}


def test_wrr_spreads_connections_by_weight(lab):
    # No rules and a raw-capable scheduler: one choice per connection, so one request each.
    port = lab.service(
        scheduler="wrr", servers=[lab.r1, lab.r2, lab.r3], weights={"r1": 3, "r2": 2, "r3": 1}
    )
    names = [get(port, f"/{i}")[1]["X-Backend"] for i in range(60)]
    assert Counter(names) == {"r1": 30, "r2": 20, "r3": 10}


def test_rr_cycles(lab):
    port = lab.service(scheduler="rr", servers=[lab.r1, lab.r2])
    assert [get(port, f"/{i}")[1]["X-Backend"] for i in range(4)] in (
        ["r1", "r2", "r1", "r2"],
        ["r2", "r1", "r2", "r1"],
    )


def test_hhttp_keeps_each_user_on_one_server(lab):
    d, port = lab.daemon, free_port()
    d.ok("-A", "-i", "users", "-s", "hhttp", "-l", f"127.0.0.1:{port}")
    for server in (lab.r1, lab.r2, lab.r3):
        d.ok("-a", "-i", "users", "-r", server.address)
        d.ok(
            "--add-rule", "-i", "users", "-p", "/users/([^/]+)/.*", "-m", "1", "-r", server.address
        )
    d.ok("--start", "-i", "users")
    homes = {}
    for user in [f"user{i}" for i in range(30)]:
        seen = {get(port, f"/users/{user}/page{j}")[1]["X-Backend"] for j in range(3)}
        assert len(seen) == 1, f"{user} moved between {seen}"
        homes[user] = seen.pop()
    assert len(set(homes.values())) == 3  # users are spread over every server


def test_chttp_pins_a_client_with_its_cookie(lab):
    port = lab.service(scheduler="chttp", servers=[lab.r1, lab.r2])
    _, headers, _ = get(port, "/cookie")
    cookies = headers.get_all("Set-Cookie")
    assert "app=1; Path=/" in cookies  # the server's own cookie is kept
    sid = next(c for c in cookies if c.startswith("KTCPVS_SID=")).split(";")[0]
    first = headers["X-Backend"]
    for i in range(6):
        assert get(port, f"/{i}", headers={"Cookie": f"a=b; {sid}"})[1]["X-Backend"] == first
