"""A third-party scheduler plugin for the tests: `first` always picks the first candidate.

Installed only through its dist-info entry point (group `tcpvs.schedulers`), exactly as a
package from PyPI would be. It keeps its own state from the engine's notifications: which
servers the service has (server_added/removed) and how many requests each relays now
(taken/released). HTTP responses it schedules carry `X-Scheduler: first`, and
`X-Scheduler-State: <servers known> <requests in flight on the chosen server>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcpvs import RealServer, ScheduleContext, Scheduler


class FirstScheduler(Scheduler):
    name = "first"
    http = False

    def __init__(self) -> None:
        self.in_flight: dict[RealServer, int] = {}

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        return servers[0] if servers else None

    def response_headers(self, ctx: ScheduleContext, server: RealServer) -> bytes:
        state = b"%d %d" % (len(self.in_flight), self.in_flight[server])
        return b"X-Scheduler: first\r\nX-Scheduler-State: " + state + b"\r\n"

    def server_added(self, server: RealServer) -> None:
        self.in_flight[server] = 0

    def server_removed(self, server: RealServer) -> None:
        del self.in_flight[server]

    def taken(self, server: RealServer, ctx: ScheduleContext) -> None:
        self.in_flight[server] += 1

    def released(self, server: RealServer) -> None:
        self.in_flight[server] -= 1
