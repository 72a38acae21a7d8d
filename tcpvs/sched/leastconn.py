"""Least-connection schedulers: `lc`, `wlc` (KTCPVS/IPVS) and `http` (KTCPVS content switching).

The choices scan the candidates once, keep the earlier server on ties and allocate nothing.
`conns` is exact: the engine counts a server up when it takes it for a connection (raw TCP)
or a request (HTTP) and down when that ends (see the contract in tcpvs/sched/base.py).
IPVS counts inactive connections at 1/256 of an active one; tcpvs only tracks connections (or
HTTP requests) in flight, so `conns` is compared as is.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.table.model import RealServer


def least_conns(servers: Sequence[RealServer]) -> RealServer | None:
    """The server with the fewest in-flight connections; None for an empty list."""
    if not servers:
        return None
    least = servers[0]
    fewest = least.conns
    for server in servers:  # from index 0 again: cheaper than slicing off the first
        if server.conns < fewest:
            least, fewest = server, server.conns
    return least


def weighted_least_conns(servers: Sequence[RealServer]) -> RealServer | None:
    """The server with the lowest conns/weight, compared without floats as KTCPVS did.

    `least` is replaced when `least.conns * s.weight > s.conns * least.weight`, so a tie keeps
    the earlier server. Candidates have weight > 0 (the engine drops quiesced servers).
    """
    if not servers:
        return None
    least = servers[0]
    conns, weight = least.conns, least.weight
    for server in servers:
        if conns * server.weight > server.conns * weight:
            least, conns, weight = server, server.conns, server.weight
    return least


class LcScheduler(Scheduler):
    """`lc`: least connections, weights ignored (as IPVS lc), ties keep the earlier server."""

    name = "lc"
    http = False

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return least_conns(servers)


class WlcScheduler(Scheduler):
    """`wlc`: weighted least-connection over all servers, one choice per connection.

    Same integer comparison as KTCPVS, ties keep the earlier server in list order. Differences
    from KTCPVS: servers keep creation order (KTCPVS listed the newest first), and the engine
    drops weight-0 servers before the call. Like KTCPVS, an idle pool sends each connection to
    the first server: the formula ignores weights while every count is 0; weights govern the
    share once connections overlap.
    """

    name = "wlc"
    http = False

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return weighted_least_conns(servers)


class HttpScheduler(WlcScheduler):
    """`http`: content-based switching; the matching rule gives the candidates, wlc picks one.

    As KTCPVS http, but every request on a keep-alive connection is routed by its own URI
    (KTCPVS let the first request decide for the whole connection and sent its first segment
    twice). A service with no rules offers all its servers.
    """

    name = "http"
    http = True
