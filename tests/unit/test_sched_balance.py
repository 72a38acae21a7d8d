"""Load-balancing schedulers (wlc, lc, rr, wrr, http) under realistic connection bookkeeping."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import HttpScheduler, LcScheduler, WlcScheduler
from tcpvs.sched.roundrobin import RrScheduler, WrrScheduler
from tcpvs.table.addr import Address
from tcpvs.table.model import RealServer
from tcpvs.table.operations import Table

CTX = ScheduleContext()


def servers(*weights: int) -> list[RealServer]:
    return [RealServer(Address("127.0.0.1", 9001 + i), w) for i, w in enumerate(weights)]


def candidates(pool: Sequence[RealServer]) -> list[RealServer]:
    """What the engine offers: servers with weight > 0."""
    return [s for s in pool if s.weight > 0]


class Simulation:
    """Connections arrive one per tick and last a random time, a few of them much longer.

    `conns` goes up on pick and down when the connection ends, as the engine does. `run`
    returns the picks per server and the in-flight connections per server summed over ticks.
    """

    def __init__(self, sched: Scheduler, pool: list[RealServer], seed: int = 1) -> None:
        self.sched, self.pool = sched, pool
        self.rng = random.Random(seed)
        self.now = 0
        self.ends: list[tuple[float, int, RealServer]] = []  # heap of (end, seq, server)

    def run(
        self, picks: int, short: float = 40.0, long: float = 400.0, long_share: float = 0.01
    ) -> tuple[Counter, Counter]:
        counts: Counter = Counter()
        load: Counter = Counter()
        for _ in range(picks):
            self.now += 1
            while self.ends and self.ends[0][0] <= self.now:
                heapq.heappop(self.ends)[2].conns -= 1
            server = self.sched.select(candidates(self.pool), CTX)
            assert server is not None
            server.conns += 1
            counts[server] += 1
            for s in self.pool:
                load[s] += s.conns
            mean = long if self.rng.random() < long_share else short
            heapq.heappush(self.ends, (self.now + self.rng.expovariate(1 / mean), self.now, server))
        return counts, load

    def finish_all(self) -> None:
        for _, _, server in self.ends:
            server.conns -= 1
        self.ends.clear()
        assert all(s.conns == 0 for s in self.pool)


def shares(counts: Counter, pool: Sequence[RealServer]) -> list[float]:
    total = sum(counts.values())
    return [counts[s] / total for s in pool]


def assert_shares(counts: Counter, pool: Sequence[RealServer], expected: Sequence[float]) -> None:
    got = shares(counts, pool)
    assert all(abs(g - e) <= 0.02 for g, e in zip(got, expected, strict=True)), (got, expected)


@pytest.mark.parametrize("sched_cls", [WlcScheduler, HttpScheduler, WrrScheduler])
def test_weighted_schedulers_follow_weights_and_weight_changes(sched_cls: type) -> None:
    pool = servers(3, 2, 1)
    sim = Simulation(sched_cls(), pool)
    sim.run(3000)  # warm up: long-lived connections in flight
    assert_shares(sim.run(30000)[0], pool, [3 / 6, 2 / 6, 1 / 6])
    pool[0].weight, pool[2].weight = 1, 3  # tcpvsadm -e: takes effect for new connections
    sim.run(3000)  # until the connections placed under the old weights are gone
    assert_shares(sim.run(30000)[0], pool, [1 / 6, 2 / 6, 3 / 6])
    pool[1].weight = 0  # quiesced: no new connections at all
    counts = sim.run(10000)[0]
    assert counts[pool[1]] == 0
    assert_shares(counts, pool, [1 / 4, 0, 3 / 4])
    sim.finish_all()


@pytest.mark.parametrize("sched_cls", [WlcScheduler, HttpScheduler])
def test_wlc_keeps_load_proportional_to_weights(sched_cls: type) -> None:
    """When long-lived connections dominate, wlc balances what is in flight, not the picks."""
    pool = servers(3, 2, 1)
    sim = Simulation(sched_cls(), pool)
    sim.run(20000, long=4000, long_share=0.05)
    counts, load = sim.run(30000, long=4000, long_share=0.05)
    assert_shares(load, pool, [3 / 6, 2 / 6, 1 / 6])
    sim.finish_all()


def test_wlc_formula_and_ties() -> None:
    a, b, c = servers(3, 1, 1)
    wlc = WlcScheduler()
    assert wlc.select([a, b, c], CTX) is a  # all idle: the earlier server
    a.conns, b.conns, c.conns = 3, 1, 0
    assert wlc.select([a, b, c], CTX) is c
    c.conns = 1  # a: 3/3, b: 1/1, c: 1/1 -- a tie everywhere keeps the earliest
    assert wlc.select([a, b, c], CTX) is a
    assert wlc.select([c, b, a], CTX) is c
    a.conns = 4  # a: 4/3 > 1
    assert wlc.select([a, b, c], CTX) is b
    a.conns = 2  # a: 2/3 < 1
    assert wlc.select([c, b, a], CTX) is a
    assert wlc.select([], CTX) is None


def test_lc_picks_fewest_connections_ignoring_weights() -> None:
    a, b, c = servers(100, 1, 1)
    lc = LcScheduler()
    assert lc.select([a, b, c], CTX) is a
    a.conns, b.conns, c.conns = 5, 2, 2
    assert lc.select([a, b, c], CTX) is b  # tie between b and c: the earlier one
    assert lc.select([a, c, b], CTX) is c
    b.conns = 1
    assert lc.select([a, c, b], CTX) is b
    assert lc.select([], CTX) is None
    pool = [a, b, c]
    for s in pool:
        s.conns = 0
    sim = Simulation(lc, pool)
    sim.run(3000)
    counts, load = sim.run(30000)
    assert_shares(counts, pool, [1 / 3, 1 / 3, 1 / 3])  # weights play no part
    assert_shares(load, pool, [1 / 3, 1 / 3, 1 / 3])
    sim.finish_all()


def test_rr_cycles_and_survives_list_changes() -> None:
    a, b, c, d = servers(1, 5, 1, 1)
    rr = RrScheduler()
    assert rr.select([], CTX) is None
    picks = [rr.select([a, b, c], CTX) for _ in range(9)]
    assert picks == [a, b, c] * 3  # weights ignored
    assert [rr.select([a, c], CTX) for _ in range(4)] == [a, c, a, c]  # b quiesced
    # d is new (never picked), b is back: the one waiting longest goes first.
    assert [rr.select([a, b, c, d], CTX) for _ in range(10)] == [d, b] + [a, c, d, b] * 2
    # A retry offers the candidates minus the server that just failed: the next one goes.
    first = rr.select([a, b, c, d], CTX)
    assert first is a
    assert rr.select([c, b, d], CTX) is c


def test_rr_rotates_each_rule_fully() -> None:
    """One instance serves every rule of a service, each with its own candidate list."""
    a, b, c = servers(1, 1, 1)
    rr = RrScheduler()
    images, pages = [], []
    for _ in range(6):
        images.append(rr.select([a, b], CTX))
        pages.append(rr.select([c], CTX))
    assert images == [a, b] * 3
    assert pages == [c] * 6


def test_wrr_smooth_order_and_exact_cycles() -> None:
    a, b, c = servers(5, 1, 1)
    wrr = WrrScheduler()
    assert [wrr.select([a, b, c], CTX) for _ in range(14)] == [a, a, b, a, c, a, a] * 2
    assert wrr.select([], CTX) is None
    pool = servers(3, 2, 1)
    wrr = WrrScheduler()
    for _ in range(50):
        cycle = Counter(wrr.select(pool, CTX) for _ in range(6))
        assert [cycle[s] for s in pool] == [3, 2, 1]
    pool[0].weight = 1  # an edit: exact proportions again over the new cycles
    counts = Counter(wrr.select(pool, CTX) for _ in range(4 * 100))
    assert [counts[s] for s in pool] == pytest.approx([100, 200, 100], abs=2)


def test_wrr_server_leaving_and_returning() -> None:
    a, b, c = servers(2, 1, 1)
    wrr = WrrScheduler()
    for _ in range(7):
        wrr.select([a, b, c], CTX)
    counts = Counter(wrr.select([a, c], CTX) for _ in range(300))  # b failing or quiesced
    assert [counts[a], counts[c]] == pytest.approx([200, 100], abs=2)
    counts = Counter(wrr.select([a, b, c], CTX) for _ in range(400))
    assert [counts[a], counts[b], counts[c]] == pytest.approx([200, 100, 100], abs=2)


def test_rarely_used_rule_keeps_its_rotation() -> None:
    a, b, c, d = servers(1, 1, 1, 1)
    rr, wrr = RrScheduler(), WrrScheduler()
    rare_rr, rare_wrr = [], []
    for _ in range(4):
        for _ in range(5000):  # the busy rule
            rr.select([a, b], CTX)
            wrr.select([a, b], CTX)
        rare_rr.append(rr.select([c, d], CTX))
        rare_wrr.append(wrr.select([c, d], CTX))
    assert rare_rr == [c, d, c, d]
    assert rare_wrr == [c, d, c, d]


def test_state_of_removed_servers_is_dropped() -> None:
    """Servers deleted and added again (new objects) through the table: the scheduler is told
    and keeps state for the servers of the service only."""
    table = Table()
    table.add_service("s", scheduler="wrr")
    for round_ in range(300):
        table.add_server("s", "127.0.0.1:9001", 1)
        table.add_server("s", "127.0.0.1:9002", 2)
        service = table.service("s")
        if round_ == 150:
            table.edit_service("s", scheduler="rr")  # told of the servers already there
        for _ in range(3):
            service.scheduler.select(service.servers, CTX)
        assert len(_state(service.scheduler)) == 2
        table.delete_server("s", "127.0.0.1:9001")
        table.delete_server("s", "127.0.0.1:9002")
        assert len(_state(service.scheduler)) == 0


def _state(scheduler: Scheduler) -> dict:
    return scheduler._current if isinstance(scheduler, WrrScheduler) else scheduler._stamps
