"""`lc`: least connections, weights ignored (as IPVS lc), ties keep the earlier server.

IPVS counts inactive connections at 1/256 of an active one; tcpvs only tracks connections
(or HTTP requests) in flight, so `conns` is compared as is.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import least_conns


class LcScheduler(Scheduler):
    name = "lc"
    http = False

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return least_conns(servers)
