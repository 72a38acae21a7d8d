"""Retries with real servers: a request a server failed goes to another server, never back to
the one that failed it; a request that is not safe to repeat is never sent twice; and under a
full outage the retry budget keeps the load the servers see near the requests sent (counted
in the servers' own logs)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.support.client import get
from tests.support.services import servers, service

REQUESTS = 60


def http_service(d, tmp_path, addresses: list[str], *settings: str) -> int:
    """An HTTP service balancing requests round robin over `addresses`, unchecked."""
    rules = tuple((".*", address) for address in addresses)
    return service(d, tmp_path, addresses, "none", "rr", settings, rules)


def received(*backends) -> Counter:
    """How often each request id reached the given servers."""
    return Counter(r["id"] for b in backends for r in b.requests())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_request_goes_to_another_server_never_back_to_the_one_that_failed(
    daemon, backends, tmp_path, workers
):
    (broken,) = backends("broken", options=("--hang-up",))  # reads each request, then closes
    good = backends("r2", "r3")
    d = daemon("--workers", str(workers))
    addresses = [broken.address, *(b.address for b in good)]
    # A third of the requests need a retry: more than the default budget (20 %) allows.
    port = http_service(d, tmp_path, addresses, "retry_budget = 50")
    answers = [get(port, f"/get?id={i}") for i in range(REQUESTS)]
    assert [status for status, _, _ in answers] == [200] * REQUESTS
    assert {headers["X-Backend"] for _, headers, _ in answers} == {"r2", "r3"}
    at_broken, at_good = received(broken), received(*good)
    assert at_broken, "round robin sent some requests to the broken server first"
    assert max(at_broken.values()) == 1  # never twice to the server that failed it
    assert set(at_good) == {str(i) for i in range(REQUESTS)}
    assert max(at_good.values()) == 1  # each answered once
    info = servers(d)
    assert info[broken.address]["stats"]["retries"] == sum(at_broken.values())
    assert [info[b.address]["stats"]["retries"] for b in good] == [0, 0]


def test_a_request_not_safe_to_repeat_is_never_sent_twice(daemon, backends, tmp_path):
    (broken,) = backends("broken", options=("--hang-up",))
    (good,) = backends("r2")
    d = daemon()
    port = http_service(d, tmp_path, [broken.address, good.address])
    statuses = [get(port, f"/post?id={i}", method="POST", body=b"x")[0] for i in range(10)]
    at_broken, at_good = received(broken), received(good)
    assert statuses.count(502) == len(at_broken) > 0  # the broken server's share: 502
    assert not set(at_broken) & set(at_good)  # and none of them replayed on the good one
    assert statuses.count(200) == len(at_good)


def test_the_retry_budget_holds_under_a_full_outage(daemon, backends, tmp_path):
    broken = backends("b1", "b2", "b3", options=("--hang-up",))
    d = daemon()
    port = http_service(d, tmp_path, [b.address for b in broken])
    statuses = [get(port, f"/get?id={i}")[0] for i in range(100)]
    assert statuses == [502] * 100
    load = sum(received(*broken).values())
    # Without a budget each request would be tried 3 times (retries = 2): 300. With the
    # default budget: a burst of 10 retries, then 20 % of the requests.
    assert 100 <= load <= 100 + 10 + 20
    assert servers(d)[broken[0].address]["stats"]["retries"] > 0
    snap = json.loads(d.ok("-L", "--json"))["services"][0]["stats"]
    assert snap["retries"] == load - 100
    assert snap["retries_denied"] >= 100 - snap["retries"] // 2
