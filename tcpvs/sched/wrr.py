"""`wrr`: smooth weighted round robin (nginx's algorithm), not IPVS's gcd stepping.

Each pick adds every candidate's weight to its `current`, takes the largest (ties to the
earlier server) and subtracts the candidates' total weight from it. Over one cycle of
`sum(weights)` picks each server gets exactly its weight, spread evenly (5:1:1 gives
a a b a c a a) where IPVS wrr sends bursts (a a a a a b c). `current` belongs to the server
object, so weight edits apply at the next pick and candidate lists may change between
calls (per rule, per retry) without resetting anyone.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.state import ServerState


class WrrScheduler(Scheduler):
    name = "wrr"
    http = False

    def __init__(self) -> None:
        self._current = ServerState()

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        if not servers:
            return None
        current_of, set_current = self._current.get, self._current.set
        candidates = iter(servers)
        best = next(candidates)
        total = best.weight
        best_current = current_of(best) + total
        set_current(best, best_current)
        for server in candidates:
            weight = server.weight
            total += weight
            current = current_of(server) + weight
            set_current(server, current)
            if current > best_current:
                best, best_current = server, current
        set_current(best, best_current - total)
        return best
