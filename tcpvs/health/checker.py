"""Active checks on the event loop: every checked server's checks, spread over its interval,
driven by one agenda (one loop timer) and run by one prober (one epoll set): no task, no
timer and no stream per server or per check. Checked this way, 1,000 servers a second cost
tcpvsd about 4 % of a core (http; tcp 3 %), a third of what a task per server cost
(docs/health.md).

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
# Checks due within the same BATCH seconds start together, at most that late: one wake-up of
# the loop for 20 checks of 1,000 a second, whose answers come close together too (fewer
# wake-ups again). A wake-up costs more than a check's Python: 1,000 checks a second took
# 9.4 % of a core in 1 ms batches, 4.0 % in 20 ms ones.
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
    """One server's checks with one spec: its current objects (a reload's, once reconciled),
    what its checks ask, and the check running if any."""

    __slots__ = ("service", "server", "spec", "target", "on_result", "check", "due", "seen")

    def __init__(
        self, service: Service, server: RealServer, spec: CheckSpec, checker: Checker
    ) -> None:
        self.service, self.server, self.spec = service, server, spec
        self.target = Target(spec, *server.address)
        self.on_result = functools.partial(checker._done, self)
        # Either a check runs, or the next is due (loop time) on the checker's agenda.
        self.check: Check | None = None
        self.due = 0.0
        self.seen = 0  # the last reconciling pass that found it


class Checker:
    # from start() on
    _loop: asyncio.AbstractEventLoop
    _prober: Prober
    _agenda: Agenda[_Watch]  # when each server's next check is due

    def __init__(self, servers: Callable[[], Checked], report: Report) -> None:
        self.servers = servers
        self.report = report
        self.watches: dict[Key, _Watch] = {}  # by (service ident, server address)
        self._passes = 0
        self._reconciler: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._prober = Prober(loop)
        self._agenda = Agenda(loop, self._due, BATCH)
        self._reconciler = loop.create_task(self._reconcile_forever())

    async def _reconcile_forever(self) -> None:
        while True:
            self.reconcile()
            await asyncio.sleep(RECONCILE_SECONDS)

    def reconcile(self) -> None:
        """Check exactly the servers `servers()` names now, each with its own check. The
        watches are updated in place: a pass over 1,000 servers allocates next to nothing
        (rebuilding a map of them each second set off several garbage collections)."""
        self._passes += 1
        now = self._loop.time()
        for service, server in self.servers():
            spec = service.check_of(server)
            if spec is None:
                continue
            key = (service.ident, server.address)
            watch = self.watches.get(key)
            if watch is not None and (spec is watch.spec or spec == watch.spec):
                watch.service, watch.server = service, server
            else:
                if watch is not None:
                    self._stop(watch)
                self.watches[key] = watch = _Watch(service, server, spec, self)
                # The first check at a random point of the interval: servers added together
                # (a config loaded) spread out at once.
                self._schedule(watch, now + random.uniform(0, spec.interval))
            watch.seen = self._passes
        for key in [key for key, watch in self.watches.items() if watch.seen != self._passes]:
            self._stop(self.watches.pop(key))

    def _stop(self, watch: _Watch) -> None:
        if watch.check is None:
            self._agenda.discard(watch.due, watch)
        else:
            self._prober.cancel(watch.check)

    def _due(self, watches: list[_Watch]) -> None:
        for watch in watches:
            if watch.server.admin == MAINT:  # maintenance pauses the checks
                self._next(watch)
            else:
                watch.check = self._prober.start(watch.target, watch.on_result)

    def _done(self, watch: _Watch, result: CheckResult) -> None:
        watch.check = None
        self._next(watch)  # first: a `report` that raises must not end the server's checks
        self.report(watch.service, watch.server, result)

    def _next(self, watch: _Watch) -> None:
        wait = watch.spec.interval * random.uniform(1 - JITTER, 1 + JITTER)
        self._schedule(watch, self._loop.time() + wait)

    def _schedule(self, watch: _Watch, when: float) -> None:
        watch.due = when
        self._agenda.add(when, watch)

    async def close(self) -> None:
        reconciler, self._reconciler = self._reconciler, None
        if reconciler is None:
            return  # not started, or closed already
        reconciler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconciler
        self.watches.clear()
        self._agenda.close()
        self._prober.close()  # (which ends the checks running)
