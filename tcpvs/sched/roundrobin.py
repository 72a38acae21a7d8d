"""Round-robin schedulers: `rr` and `wrr`.

Both keep per-server state in a dict keyed by the server object; the engine's notifications
(tcpvs/sched/base.py) drop a server's entry when it is removed, so the state stays exact and
bounded without guessing which servers are gone.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.table.model import RealServer


class RrScheduler(Scheduler):
    """`rr`: round robin over the candidates, as the least recently picked server.

    IPVS keeps a position in one fixed list; tcpvs candidate lists differ per rule and per
    retry (a server that failed for this request is left out), so each server carries the stamp
    of its last pick and the oldest stamp wins (a server never picked before goes first; ties go
    to the earlier server). Over a fixed list this is plain rotation; servers joining, leaving or
    changing between calls keep the rotation fair without any index bookkeeping.
    """

    name = "rr"
    http = False

    def __init__(self) -> None:
        self._stamps: dict[RealServer, int] = {}
        self._clock = 0

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        if not servers:
            return None
        stamps = self._stamps
        candidates = iter(servers)
        oldest = next(candidates)
        oldest_stamp = stamps.get(oldest, -1)
        for server in candidates:
            stamp = stamps.get(server, -1)
            if stamp < oldest_stamp:
                oldest, oldest_stamp = server, stamp
        stamps[oldest] = self._clock
        self._clock += 1
        return oldest

    def server_removed(self, server: RealServer) -> None:
        self._stamps.pop(server, None)


class WrrScheduler(Scheduler):
    """`wrr`: smooth weighted round robin (nginx's algorithm), not IPVS's gcd stepping.

    Each pick adds every candidate's weight to its `current`, takes the largest (ties to the
    earlier server) and subtracts the candidates' total weight from it. Over one cycle of
    `sum(weights)` picks each server gets exactly its weight, spread evenly (5:1:1 gives
    a a b a c a a) where IPVS wrr sends bursts (a a a a a b c). Weight edits apply at the next
    pick, and candidate lists may change between calls (per rule, per retry) without
    resetting anyone.
    """

    name = "wrr"
    http = False

    def __init__(self) -> None:
        self._current: dict[RealServer, float] = {}

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        if not servers:
            return None
        current = self._current
        candidates = iter(servers)
        best = next(candidates)
        total = best.weight
        best_current = current.get(best, 0) + total
        current[best] = best_current
        for server in candidates:
            weight = server.weight
            total += weight
            value = current.get(server, 0) + weight
            current[server] = value
            if value > best_current:
                best, best_current = server, value
        current[best] = best_current - total
        return best

    def server_removed(self, server: RealServer) -> None:
        self._current.pop(server, None)
