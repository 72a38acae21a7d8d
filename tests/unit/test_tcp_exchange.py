"""The raw TCP exchange, event by event: one server per connection, bytes kept until it is
reached, then a tunnel; a refused server is skipped, none left closes the client."""

from __future__ import annotations

from tcpvs.exchange.base import CLOSED
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
