"""`rr`: round robin over the candidates, as the least recently picked server.

IPVS keeps a position in one fixed list; tcpvs candidate lists differ per rule and per retry
(a server that failed for this request is left out), so each server carries the stamp of
its last pick and the oldest stamp wins (a server never picked before goes first; ties go to
the earlier server).
Over a fixed list this is plain rotation; servers joining, leaving or changing between
calls keep the rotation fair without any index bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.state import ServerState


class RrScheduler(Scheduler):
    name = "rr"
    http = False

    def __init__(self) -> None:
        self._stamps = ServerState(default=-1)
        self._clock = 0

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        if not servers:
            return None
        stamp_of = self._stamps.get
        candidates = iter(servers)
        oldest = next(candidates)
        oldest_stamp = stamp_of(oldest)
        for server in candidates:
            stamp = stamp_of(server)
            if stamp < oldest_stamp:
                oldest, oldest_stamp = server, stamp
        self._stamps.set(oldest, self._clock)
        self._clock += 1
        return oldest
