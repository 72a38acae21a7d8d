"""Least-connection choices shared by the schedulers: plain and weighted (KTCPVS/IPVS wlc).

Both scan the candidates once, keep the earlier server on ties and allocate nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer


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
