"""Active checks on the event loop: every checked server's checks, spread over its interval,
from one timetable and one prober (no task per server).

The checker does not decide what is checked: `servers()` (given by its owner) says which
servers of which services are checked now, and a reconciling pass each RECONCILE_SECONDS starts
checking new ones and stops checking those gone (or whose check changed). A server is
known by its service and address, so a reloaded table (new objects, same servers) goes on
being checked at the same pace. Every result goes
to `report(service, server, result)`; the owner keeps the rise/fall machine and the states (a
Switch for itself, the master of `tcpvsd --workers N` for all its workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Iterable

from tcpvs.health.agenda import Agenda
from tcpvs.health.probe import Check, Prober, Target
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import CheckSpec
from tcpvs.health.state import Health
from tcpvs.table.addr import Address, format_address
from tcpvs.table.model import DOWN, MAINT, UP, RealServer, Service

log = logging.getLogger("tcpvsd")

RECONCILE_SECONDS = 1.0
JITTER = 0.1  # each wait is the interval ±10 %: servers added together drift apart
# Checks due this close together start together, at most this early: one wake-up of the loop
# for several checks, and their answers come close together too (fewer wake-ups again).
BATCH = 0.02

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


class _Watch:
    """One server's checks with one spec: what they ask, and the check running if any."""

    __slots__ = ("key", "spec", "target", "on_result", "check", "stopped")

    def __init__(self, key: Key, spec: CheckSpec, checker: Checker) -> None:
        self.key = key
        self.spec = spec
        self.target = Target(spec, *key[1])
        self.on_result = functools.partial(checker._done, self)
        self.check: Check | None = None
        self.stopped = False


def _stopped(watch: _Watch) -> bool:
    return watch.stopped


class Checker:
    # from start() on
    _loop: asyncio.AbstractEventLoop
    _prober: Prober
    _agenda: Agenda[_Watch]  # when each server's next check is due

    def __init__(self, servers: Callable[[], Checked], report: Report) -> None:
        self.servers = servers
        self.report = report
        # (service ident, server address) -> its checks, and its current objects
        self.watches: dict[Key, _Watch] = {}
        self.current: dict[Key, tuple[Service, RealServer]] = {}
        self._reconciler: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._prober = Prober(loop)
        self._agenda = Agenda(loop, self._due, BATCH, _stopped)
        self._reconciler = loop.create_task(self._reconcile_forever())

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
        for key, watch in list(self.watches.items()):
            current = self.current.get(key)
            spec = None if current is None else current[0].check_of(current[1])
            if spec is not watch.spec and spec != watch.spec:  # (`is`: mostly, and cheaper)
                self._stop(watch)
                del self.watches[key]
        now = self._loop.time()
        for key, (service, server) in self.current.items():
            check = service.check_of(server)
            if key not in self.watches and check is not None:
                self.watches[key] = watch = _Watch(key, check, self)
                # The first check at a random point of the interval: servers added together
                # (a config loaded) spread out at once.
                self._agenda.add(now + random.uniform(0, check.interval), watch)

    def _stop(self, watch: _Watch) -> None:
        watch.stopped = True
        if watch.check is not None:
            self._prober.cancel(watch.check)

    def _due(self, watches: list[_Watch]) -> None:
        for watch in watches:
            server = self.current[watch.key][1]
            if server.admin == MAINT:  # maintenance pauses the checks
                self._next(watch)
            else:
                watch.check = self._prober.start(watch.target, watch.on_result)

    def _done(self, watch: _Watch, result: CheckResult) -> None:
        watch.check = None
        self._next(watch)
        current = self.current.get(watch.key)  # (the objects of a reload since it started)
        if current is not None:
            self.report(*current, result)

    def _next(self, watch: _Watch) -> None:
        wait = watch.spec.interval * random.uniform(1 - JITTER, 1 + JITTER)
        self._agenda.add(self._loop.time() + wait, watch)

    async def close(self) -> None:
        reconciler, self._reconciler = self._reconciler, None
        if reconciler is None:
            return  # not started, or closed already
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        for watch in self.watches.values():
            self._stop(watch)
        self.watches.clear()
        self._agenda.close()
        self._prober.close()
