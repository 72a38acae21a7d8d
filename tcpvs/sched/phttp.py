"""`phttp`: persistent-connection HTTP: a keep-alive client stays on its server.

When the server of the previous request on the same client connection is among this
request's candidates (its rule offers it, its weight is > 0, it has not failed), it is kept,
so the pooled server connection and any server-side state are reused; otherwise wlc picks.
KTCPVS phttp hashed the URI's match instead (its wlc call was commented out) and dropped the
connection when no server matched after the first request; here that is `hhttp`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.model import RealServer
from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import weighted_least_conns


class PhttpScheduler(Scheduler):
    name = "phttp"
    http = True

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        previous = ctx.previous
        if previous is not None and previous in servers:  # RealServer compares by identity
            return previous
        return weighted_least_conns(servers)
