"""Nothing lost, nothing sent twice: every byte of many concurrent exchanges checked end to end.

A real tcpvsd (compiled and pure engine) in front of real servers; request and response
bodies from 0 B to several MiB, Content-Length and chunked both ways, with and without
`Expect: 100-continue`, sent with the head or after it, on fresh and pooled server
connections, with servers closing connections before a request (idle keep-alive), after
reading one, and halfway through a response. sha256 is checked on both ends (see
tests/support/integrity.py for the rules). `TCPVS_SOAK=N` multiplies the number of requests.
"""

from __future__ import annotations

import os

import pytest

from tests.support.integrity import Case, random_cases, run, violations
from tests.support.lab import Lab
from tests.support.procs import ENGINE_BUILDS, start_backend, start_daemon

SOAK = int(os.environ.get("TCPVS_SOAK", "1"))


@pytest.fixture(scope="module", params=list(ENGINE_BUILDS))
def rig(request, tmp_path_factory):
    """tcpvsd with i1 and i2, and i3 that closes keep-alive connections idle for 0.2 s (pooled
    connections go stale); each test makes its own service, so its pool starts empty."""
    tmp = tmp_path_factory.mktemp("integrity")
    servers = [start_backend(tmp, name) for name in ("i1", "i2")]
    servers.append(start_backend(tmp, "i3", options=("--idle-close", "0.2")))
    lab = Lab(start_daemon(tmp, env=ENGINE_BUILDS[request.param]), servers, tmp)
    yield lab
    lab.close()


def check(rig: Lab, outcomes, stale_pool: bool = False) -> None:
    problems = violations(outcomes, rig.received(), stale_pool)
    assert not problems, f"{len(problems)} of {len(outcomes)} requests:\n" + "\n".join(
        problems[:20]
    )


async def test_bodies_both_ways_every_framing_fresh_and_pooled(rig):
    port = rig.service(servers=[rig.r1, rig.r2])
    cases = random_cases(160 * SOAK, seed=1, prefix=f"{port}-matrix")
    check(rig, await run(port, cases, sessions=8))


async def test_large_bodies_with_the_head_on_fresh_server_connections(rig):
    """Each session's first request meets an empty pool: the body arrives while tcpvs is
    still connecting (the upload that hung)."""
    port = rig.service(servers=[rig.r1, rig.r2])
    cases = [
        Case(f"{port}-fresh-{n}", "POST", req_len=size, req_chunked=n % 2 == 1, resp_len=13)
        for n, size in enumerate([300_000, 1_000_000, 3 * 1024 * 1024 + 7, 500_000] * 2)
    ]
    check(rig, await run(port, cases, sessions=len(cases)))


async def test_servers_failing_at_every_stage(rig):
    """Servers that read a request and close, or close halfway through the response, mixed
    with normal requests on the same client connections."""
    port = rig.service(servers=[rig.r1, rig.r2])
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    cases = random_cases(120 * SOAK, seed=2, prefix=f"{port}-fail", fail_share=0.3, methods=methods)
    check(rig, await run(port, cases, sessions=6))


async def test_stale_pooled_connections_replay_only_what_is_safe(rig):
    """The server closes idle keep-alive connections after 0.2 s and the clients pause about
    that long: pooled connections die before, while and after requests are sent on them."""
    port = rig.service(servers=[rig.r3])
    methods = ("GET", "GET", "POST", "PATCH", "DELETE")
    cases = random_cases(80 * SOAK, seed=3, prefix=f"{port}-stale", methods=methods)
    check(rig, await run(port, cases, sessions=4, pause=(0.15, 0.25)), stale_pool=True)
