"""`wlc`: weighted least-connection over all servers, one choice per connection (KTCPVS wlc).

Same integer comparison as KTCPVS (`least.conns * s.weight > s.conns * least.weight`), ties
keep the earlier server in list order. Differences from KTCPVS: servers keep creation order
(KTCPVS listed the newest first), and the engine drops weight-0 servers before the call. Like
KTCPVS, an idle pool sends each connection to the first server: the formula ignores weights
while every count is 0; weights govern the share once connections overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import weighted_least_conns


class WlcScheduler(Scheduler):
    name = "wlc"
    http = False

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return weighted_least_conns(servers)
