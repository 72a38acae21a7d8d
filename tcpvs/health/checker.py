"""Active checks on the event loop: one task per checked server, spread over its interval.

The checker does not decide what is checked: `servers()` (given by its owner) says which
servers of which services are checked now, and a reconciling pass each RECONCILE_SECONDS starts
the tasks of new ones and ends those of servers gone (or whose check changed). A server is
known by its service and address, so a reloaded table (new objects, same servers) goes on
being checked at the same pace. Every result goes
to `report(service, server, result)`; the owner keeps the rise/fall machine and the states (a
Switch for itself, the master of `tcpvsd --workers N` for all its workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable

from tcpvs.health.probe import probe
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import CheckSpec
from tcpvs.health.state import Health
from tcpvs.table.addr import Address, format_address
from tcpvs.table.model import DOWN, MAINT, UP, RealServer, Service

log = logging.getLogger("tcpvsd")

RECONCILE_SECONDS = 1.0
JITTER = 0.1  # each wait is the interval ±10 %: 1,000 servers never check in one millisecond

Checked = Iterable[tuple[Service, RealServer]]
Key = tuple[str, Address]
Report = Callable[[Service, RealServer, CheckResult], None]


def judge(service: Service, server: RealServer, result: CheckResult) -> str | None:
    """Count a check's result into the server's Health (made at its first check). When it
    changes the server's health: set `server.health`, log the change with its reason, and
    return the new health (`up` or `down`); else None. (The state follows from the health:
    the caller's, who also tells the scheduler or the workers.)"""
    check = service.check_of(server)
    assert check is not None, "only checked servers are judged"
    now = time.time()
    health = server.checks
    if health is None:
        health = server.checks = Health(check.rise, check.fall, since=now)
    if not health.observe(result, now):
        return None
    server.health = UP if health.up else DOWN
    where = f"service {service.ident}: server {format_address(server.address)}"
    log.warning("%s is %s: %s", where, server.health, health.reason())
    return server.health


class Checker:
    def __init__(self, servers: Callable[[], Checked], report: Report) -> None:
        self.servers = servers
        self.report = report
        # (service ident, server address) -> (its check, its task), and its current objects
        self.tasks: dict[Key, tuple[CheckSpec, asyncio.Task[None]]] = {}
        self.current: dict[Key, tuple[Service, RealServer]] = {}
        self._reconciler: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_forever())

    async def _reconcile_forever(self) -> None:
        while True:
            self.reconcile()
            await asyncio.sleep(RECONCILE_SECONDS)

    def reconcile(self) -> None:
        """Check exactly the servers `servers()` names now, each with its own check."""
        self.current = {
            (service.ident, server.address): (service, server)
            for service, server in self.servers()
            if service.check_of(server) is not None
        }
        for key, (spec, task) in list(self.tasks.items()):
            current = self.current.get(key)
            if current is None or current[0].check_of(current[1]) != spec:
                task.cancel()
                del self.tasks[key]
        loop = asyncio.get_running_loop()
        for key, (service, server) in self.current.items():
            check = service.check_of(server)
            if key not in self.tasks and check is not None:
                self.tasks[key] = (check, loop.create_task(self._check_forever(key, check)))

    async def _check_forever(self, key: Key, spec: CheckSpec) -> None:
        # The first check at a random point of the interval: servers added together (a config
        # loaded) spread out at once.
        await asyncio.sleep(random.uniform(0, spec.interval))
        host, port = key[1]
        while True:
            service, server = self.current[key]
            if server.admin != MAINT:  # maintenance pauses the checks
                result = await probe(spec, host, port)
                if key in self.current:
                    service, server = self.current[key]  # (a reload while it ran)
                    self.report(service, server, result)
            await asyncio.sleep(spec.interval * random.uniform(1 - JITTER, 1 + JITTER))

    async def close(self) -> None:
        tasks = [task for _, task in self.tasks.values()]
        if self._reconciler is not None:
            tasks.append(self._reconciler)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
