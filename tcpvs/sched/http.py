"""`http`: content-based switching; the matching rule gives the candidates, wlc picks one.

As KTCPVS http, but every request on a keep-alive connection is routed by its own URI (KTCPVS
let the first request decide for the whole connection and sent its first segment twice).
A service with no rules offers all its servers.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import weighted_least_conns


class HttpScheduler(Scheduler):
    name = "http"
    http = True

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return weighted_least_conns(servers)
