"""The raw TCP exchange, event by event: one server per connection, bytes kept until it is
reached, then a tunnel; a refused server is skipped, none left closes the client."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpvs.exchange.base import CLOSED
from tcpvs.table.counters import CAUSES
from tests.unit.exchange_port import service, start_tcp

SERVERS = "    server = 127.0.0.1:9001 1\n    server = 127.0.0.1:9002 1"


def test_bytes_before_the_server_is_reached_go_first_then_the_tunnel():
    lab = start_tcp(service(SERVERS, "wlc"))
    assert lab.port.take() == [("open", ("127.0.0.1:9001", True))]  # never a pooled one
    lab.exchange.client_data(b"hello ")
    lab.exchange.client_data(b"world")
    lab.exchange.server_ready(False)
    assert lab.port.take() == [("server", b"hello world"), ("hold", False), ("tunnel", None)]
    assert lab.service.servers[0].conns == 1
    lab.exchange.tunnel_ended()
    assert lab.port.take() == [("drop", None), ("close", None)]
    assert lab.service.servers[0].conns == 0


def test_a_refused_server_is_skipped_and_none_left_closes():
    lab = start_tcp(service(SERVERS, "wlc"))
    first, second = lab.service.servers
    lab.port.take()
    lab.exchange.server_failed(first)
    assert lab.port.take() == [("open", ("127.0.0.1:9002", True))]
    lab.exchange.server_failed(second)
    assert lab.port.take() == [("drop", None), ("close", None)]
    assert lab.service.stats.errors == 1


def test_a_tunnel_idle_past_read_timeout_is_cut():
    lab = start_tcp(service(SERVERS + "\n    read_timeout = 30", "wlc"))
    lab.exchange.server_ready(False)
    lab.port.take()
    assert not lab.expire(20)
    lab.exchange.active()  # bytes went by
    assert not lab.expire(20)
    assert lab.expire(10)
    assert lab.port.take() == [("drop", None), ("abort", None)]


def test_a_connection_is_tried_on_at_most_retries_plus_one_servers():
    more = SERVERS + "\n    server = 127.0.0.1:9003 1\n    retries = 1"
    lab = start_tcp(service(more, "wlc"))
    first, second, _ = lab.service.servers
    lab.exchange.server_failed(first)
    lab.exchange.server_failed(second)
    opened = [arg[0] for name, arg in lab.port.take() if name == "open"]
    assert opened == ["127.0.0.1:9001", "127.0.0.1:9002"]  # not 9003: one retry only
    assert lab.service.stats.retries == first.retries == 1
    assert lab.exchange.state == CLOSED


# -- TLS passthrough: routing by the ClientHello's server name ------------------------------

HELLOS = Path(__file__).parent / "data" / "clienthellos"
SNI_SERVICE = (
    SERVERS
    + "\n    server = 127.0.0.1:9003 1"
    + '\n    rule = sni "curl.example" use server 127.0.0.1:9001'
    + '\n    rule = sni "*.example" use server 127.0.0.1:9002'
)


def hello(name: str) -> bytes:
    return (HELLOS / f"{name}.bin").read_bytes()


@pytest.mark.parametrize(
    ("captured", "server"),
    [("curl", "127.0.0.1:9001"), ("python_sni_alpn", "127.0.0.1:9002")],
)
def test_a_clienthello_goes_whole_to_the_server_its_name_routes_to(captured, server):
    lab = start_tcp(service(SNI_SERVICE, "wlc"))
    data = hello(captured)
    for i in range(len(data) - 1):  # nothing is decided before the hello is whole
        lab.exchange.client_data(data[i : i + 1])
        assert lab.port.take() == []
    lab.exchange.client_data(data[-1:] + b"early")
    assert lab.port.take() == [("open", (server, True))]
    lab.exchange.server_ready(False)
    assert lab.port.take()[0] == ("server", data + b"early")  # unchanged, and first


def test_a_name_no_rule_has_goes_to_the_scheduler_over_every_server():
    lab = start_tcp(service(SERVERS + '\n    rule = sni "other.test" use server 127.0.0.1:9002'))
    lab.exchange.client_data(hello("curl"))
    assert lab.port.take() == [("open", ("127.0.0.1:9001", True))]  # wlc's first


@pytest.mark.parametrize(
    "data",
    [hello("python_no_sni"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x04\x02xyz"],
    ids=["no-sni", "plain-http", "not-a-hello"],
)
def test_no_name_goes_to_the_default_rule_or_nowhere(data):
    closed = start_tcp(service(SNI_SERVICE, "wlc"))
    closed.exchange.client_data(data)
    assert closed.port.take() == [("drop", None), ("close", None)]
    assert closed.service.stats.causes[CAUSES.index("bad_request")] == 1
    default = SNI_SERVICE + '\n    rule = sni "*" use server 127.0.0.1:9003'
    routed = start_tcp(service(default, "wlc"))
    routed.exchange.client_data(data)
    assert routed.port.take() == [("open", ("127.0.0.1:9003", True))]


def test_a_hello_that_never_completes_is_cut_at_client_timeout():
    lab = start_tcp(service(SNI_SERVICE + "\n    client_timeout = 2", "wlc"))
    lab.exchange.client_data(hello("curl")[:50])
    assert not lab.expire(1.9)
    assert lab.expire(0.2)
    assert lab.port.take() == [("drop", None), ("abort", None)]
    assert lab.service.stats.causes[CAUSES.index("client_timeout")] == 1


def test_a_refused_server_is_retried_within_the_rules_servers_only():
    two = SNI_SERVICE + '\n    rule = sni "*.example" use server 127.0.0.1:9003'
    lab = start_tcp(service(two, "wlc"))
    lab.exchange.client_data(hello("python_sni_alpn"))
    second, third = lab.service.servers[1:]
    lab.exchange.server_failed(second)
    lab.exchange.server_failed(third)
    opened = [arg[0] for name, arg in lab.port.take() if name == "open"]
    assert opened == ["127.0.0.1:9002", "127.0.0.1:9003"]  # never 9001, whose rule it is not
