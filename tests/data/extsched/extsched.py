"""A third-party scheduler plugin for the tests: `first` always picks the first candidate.

Installed only through its dist-info entry point (group `tcpvs.schedulers`), exactly as a
package from PyPI would be; HTTP responses it schedules carry `X-Scheduler: first`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs.sched import ScheduleContext, Scheduler
from tcpvs.table.model import RealServer


class FirstScheduler(Scheduler):
    name = "first"
    http = False

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return servers[0] if servers else None

    def response_headers(self, ctx: ScheduleContext, server: RealServer) -> bytes:
        return b"X-Scheduler: first\r\n"
