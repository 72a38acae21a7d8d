"""Slow start (HAProxy's `slowstart`): a server that comes back `up` takes a growing share of
its weight for the service's `slowstart` seconds, so that a cold server (empty caches, JIT,
connection pools) is not flooded at once. Sans-IO: the Switch calls begin() when a server is
back and step() every RAMP_STEP until it returns False."""

from __future__ import annotations

from collections.abc import Iterable

from tcpvs.table.model import RealServer, Service

RAMP_STEP = 0.5  # seconds between two steps


def begin(service: Service, server: RealServer, now: float) -> bool:
    """`server` is back up at monotonic time `now`: True if a slow start began (its service
    has `slowstart`), its weight now the first step's."""
    seconds = service.settings.slowstart
    if seconds <= 0:
        return False
    server.ramp_start = now
    server.ramp(now, seconds)
    service.scheduler.server_changed(server)
    return True


def step(services: Iterable[Service], now: float) -> bool:
    """Every slow start one step further (the scheduler told); True while any goes on."""
    going = False
    for service in services:
        for server in service.servers:
            if server.ramp_start:
                going |= server.ramp(now, service.settings.slowstart)
                service.scheduler.server_changed(server)
    return going
