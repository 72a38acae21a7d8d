"""Slow start without sockets: a server back `up` takes a growing share of its weight, which
is what weighted schedulers pick by; the operator's weight stays what `-L` lists."""

from __future__ import annotations

from collections import Counter

import pytest

from tcpvs.sched.base import ScheduleContext
from tcpvs.sched.roundrobin import WrrScheduler
from tcpvs.table import slowstart
from tcpvs.table.addr import Address
from tcpvs.table.listing import render_config, snapshot
from tcpvs.table.model import RAMP_FLOOR, RealServer
from tcpvs.table.operations import Table


def test_the_weight_ramps_from_a_floor_to_the_configured_one_in_proportion_to_time():
    server = RealServer(Address("127.0.0.1", 9001), 20)
    server.ramp_start = 100.0
    assert server.ramp(100.0, 10) and server.weight == pytest.approx(20 * RAMP_FLOOR)
    assert server.ramp(102.5, 10) and server.weight == pytest.approx(5)
    assert server.ramp(107.5, 10) and server.weight == pytest.approx(15)
    assert not server.ramp(110.0, 10) and server.weight == 20 and server.ramp_start == 0.0
    assert server.configured == 20


def test_an_edited_weight_is_in_force_at_once_and_the_ramp_goes_on_from_it():
    server = RealServer(Address("127.0.0.1", 9001), 4)
    server.ramp_start = 100.0
    server.ramp(105.0, 10)
    server.set_weight(10)
    assert (server.weight, server.configured) == (10, 10)
    server.ramp(105.0, 10)
    assert server.weight == pytest.approx(5)


def test_wrr_gives_a_ramping_server_its_share_of_picks():
    full, ramping = RealServer(Address("127.0.0.1", 9001)), RealServer(Address("127.0.0.1", 9002))
    ramping.ramp_start = 0.0
    ramping.ramp(0.5, 5)  # a tenth of the way: weight 0.1
    scheduler, ctx = WrrScheduler(), ScheduleContext()
    picks = Counter(scheduler.select([full, ramping], ctx).address.port for _ in range(1100))
    assert picks == {9001: 1000, 9002: 100}


def web(slow: float) -> Table:
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080", scheduler="wrr")
    table.edit_service("web", slowstart=slow)
    table.add_server("web", "127.0.0.1:9001", 8)
    table.add_server("web", "127.0.0.1:9002", 8)
    return table


def test_a_server_back_up_ramps_over_slowstart_seconds_and_lists_its_own_weight():
    table = web(10)
    service = table.services["web"]
    server = service.servers[0]
    assert slowstart.begin(service, server, 1000.0)
    weights = [server.weight]
    for now in range(1001, 1012):
        going = slowstart.step(table.services.values(), float(now))
        weights.append(server.weight)
    assert not going
    assert weights == pytest.approx([0.4, 0.8, 1.6, 2.4, 3.2, 4, 4.8, 5.6, 6.4, 7.2, 8, 8])
    assert service.servers[1].weight == 8  # the other one never ramped
    slowstart.begin(service, server, 2000.0)
    listing = render_config(snapshot(table), stats=True)
    assert "    server = 127.0.0.1:9001 8  # up, slow start 5 %: " in listing  # its own weight
    assert snapshot(table)["services"][0]["servers"][0]["effective_weight"] == 0.4


def test_slowstart_off_keeps_the_full_weight_when_a_server_comes_back():
    table = web(0)
    service = table.services["web"]
    assert not slowstart.begin(service, service.servers[0], 1000.0)
    assert service.servers[0].weight == 8
