"""Switch: the service table plus the listeners that serve it on the running event loop.

This is the library API (`import tcpvs`): every tcpvsadm command is a coroutine here, and the
daemon's control socket only calls these methods. Table edits apply to running services at
once; a failed operation raises TableError (or ConfigError) and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from tcpvs.errors import ConfigError, TableError
from tcpvs.health.checker import Checker, judge
from tcpvs.health.probe import probe
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import CheckSpec
from tcpvs.health.state import Health
from tcpvs.observe.access import AccessLog
from tcpvs.proxy.listener import ServiceListener
from tcpvs.table import slowstart
from tcpvs.table.addr import Address, format_address, parse_address
from tcpvs.table.listing import snapshot
from tcpvs.table.model import DEFAULT_SERVER_PORT, DOWN, UP, RealServer, Rule, Service, SniRule
from tcpvs.table.operations import Table

log = logging.getLogger("tcpvsd")

MAX_EJECTION = 300.0  # seconds: the longest a server is ejected for failing requests in a row
EJECTION_PROBE_TIMEOUT = 1.0  # the check that ends an ejection, when its service has none

# What Table.edit_service may change of a service (restored when a running one cannot follow).
_EDITABLE = (
    "listen",
    "settings",
    "redirect",
    "redirect_https",
    "scheduler_name",
    "scheduler",
    "check",
    "certs",
    "upstream",
)

# How long a stopped service's open connections may take to finish before they are cut.
DEFAULT_DRAIN_SECONDS = 10.0


class Switch:
    """Run virtual services inside an asyncio program.

    Example:
        switch = Switch()
        await switch.add_service("web", listen="127.0.0.1:8080")
        await switch.add_server("web", "127.0.0.1:9001")
        await switch.add_rule("web", "^/images/", "127.0.0.1:9001")
        await switch.start("web")
    """

    def __init__(
        self,
        table: Table | None = None,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        reuse_port: bool = False,
        access_log: AccessLog | None = None,
        checks: bool = True,
    ):
        self.table = table if table is not None else Table()
        self.drain_seconds = drain_seconds
        # Listen with SO_REUSEPORT (tcpvsd workers share their listening addresses).
        self.reuse_port = reuse_port
        # Every service's requests go to `access_log` when given; else only those of services
        # with `access_log = on`, to stderr.
        self.access_log = access_log
        self._stderr_log: AccessLog | None = None
        self.loads = {"ok": 0, "failed": 0}  # config files loaded, by result
        # Run the services' health checks and log state changes (a worker of `tcpvsd
        # --workers N` does neither: its master checks, logs, and tells it: set_health).
        self.checks = checks
        self._checker: Checker | None = None
        self._ejections: set[asyncio.Task[None]] = set()
        self._ramping: asyncio.Task[None] | None = None  # steps the slow starts going on
        self._listeners: dict[str, ServiceListener] = {}
        self._draining: set[asyncio.Task] = set()

    # -- services -------------------------------------------------------------------------

    async def add_service(self, ident: str, **options: Any) -> Service:
        return self.table.add_service(ident, **options)

    async def edit_service(self, ident: str, **options: Any) -> Service:
        service = self.table.service(ident)
        listener = self._listeners.get(ident)
        if listener is None:
            return self.table.edit_service(ident, **options)
        # Running: the new address is bound before the old one closes, and a failed bind
        # restores every setting of this edit, so the service keeps serving as it was.
        before = {name: getattr(service, name) for name in _EDITABLE}

        def restore() -> None:
            for name, value in before.items():
                setattr(service, name, value)

        self.table.edit_service(ident, **options)
        if (service.certs is None) != (before["certs"] is None):
            restore()  # its socket speaks TLS or not: a new listener, which -E never cuts to
            raise TableError("TLS is turned on or off only while the service is stopped")
        if service.listen != before["listen"]:
            try:
                replacement = await self._open(service)
            except TableError:
                restore()
                raise
            self._listeners[ident] = replacement
            self._drain(listener)
            service.running = True  # closing the old listener marked the (same) service stopped
        self._wire(self._listeners[ident])
        return service

    async def delete_service(self, ident: str) -> Service:
        self.table.service(ident)
        await self.stop(ident)
        return self.table.delete_service(ident)

    async def flush(self) -> None:
        await self.stop()
        self.table.flush()

    # -- servers and rules ------------------------------------------------------------------

    async def add_server(
        self,
        ident: str,
        server: str | Address,
        weight: int = 1,
        check: str | CheckSpec | None = None,
        tls: bool | str = False,
    ) -> RealServer:
        return self.table.add_server(ident, server, weight, check, tls)

    async def edit_server(
        self,
        ident: str,
        server: str | Address,
        weight: int | None = None,
        state: str | None = None,
        check: str | CheckSpec | None = None,
        tls: bool | str | None = None,
    ) -> RealServer:
        found = self._find_server(ident, server)
        before = None if found is None else found.state
        real = self.table.edit_server(ident, server, weight, state, check, tls)  # (its errors)
        if real.state != before and real.state == UP:
            self._slow_start(self.table.service(ident), real)
        if self.checks and real.state != before:
            log.warning(
                "service %s: server %s is %s (tcpvsadm --state %s)",
                ident,
                format_address(real.address),
                real.state,
                state,
            )
        return real

    def _find_server(self, ident: str, server: str | Address) -> RealServer | None:
        service = self.table.services.get(ident)
        try:
            return None if service is None else service.find_server(_server_address(server))
        except TableError:
            return None

    async def set_health(self, ident: str, server: str | Address, health: str) -> None:
        """What the checks say of a server (`up` or `down`); its state follows, unless an
        operator's drain or maint stands. (The control operation the master sends.)"""
        if health not in (UP, DOWN):
            raise TableError(f"illegal health '{health}' (up or down)")
        service = self.table.service(ident)
        real = service.find_server(_server_address(server))
        if real is None:
            raise TableError("No such destination")
        if real.ejected_until:
            return  # ejected by this process's own observation: its probe ends that
        real.health = health
        self._restate(service, real)

    async def delete_server(self, ident: str, server: str | Address) -> RealServer:
        return self.table.delete_server(ident, server)

    async def add_rule(
        self, ident: str, pattern: str, server: str | Address, match: int = 0
    ) -> Rule:
        return self.table.add_rule(ident, pattern, server, match)

    async def delete_rule(self, ident: str, pattern: str, server: str | Address) -> None:
        self.table.delete_rule(ident, pattern, server)

    async def add_sni_rule(self, ident: str, pattern: str, server: str | Address) -> SniRule:
        return self.table.add_sni_rule(ident, pattern, server)

    async def delete_sni_rule(self, ident: str, pattern: str, server: str | Address) -> None:
        self.table.delete_sni_rule(ident, pattern, server)

    # -- running ----------------------------------------------------------------------------

    def _selected(self, ident: str | None) -> list[Service]:
        if ident:
            return [self.table.service(ident)]
        return list(self.table.services.values())

    async def start(self, ident: str | None = None) -> None:
        """Start one service, or every service; starting a running service does nothing."""
        for service in self._selected(ident):
            if service.ident in self._listeners:
                continue
            self._listeners[service.ident] = await self._open(service)
        if self.checks and self._checker is None:
            self._checker = Checker(self._checked_servers, self._report)
            self._checker.start()

    def _checked_servers(self) -> Iterator[tuple[Service, RealServer]]:
        """The servers of the running services (the checker takes those with a check). A
        server whose service stopped checking is up again as far as checks go."""
        for listener in list(self._listeners.values()):
            service = listener.service
            for server in service.servers:
                if service.check_of(server) is None and server.checks is not None:
                    server.checks = None
                    server.health = UP
                    self._restate(service, server)
                yield service, server

    def _report(self, service: Service, server: RealServer, result: CheckResult) -> None:
        if server.ejected_until:
            return  # ejected: its own probe decides when the ejection ends
        if judge(service, server, result) is not None:
            self._restate(service, server)

    # -- passive checks -------------------------------------------------------------------

    def _eject(self, service: Service, server: RealServer, reason: str) -> None:
        """A server failed requests in a row: out for `eject_time`, doubled at each new
        ejection (at most MAX_EJECTION), then checked once before it takes requests again.
        The last server of a service that takes requests is never ejected: it is all the
        service has."""
        if server.state != UP or not any(s.state == UP for s in service.servers if s is not server):
            return
        self._start_ejection(service, server, reason)

    def _start_ejection(self, service: Service, server: RealServer, reason: str) -> None:
        server.ejections += 1
        seconds = min(service.settings.eject_time * 2 ** (server.ejections - 1), MAX_EJECTION)
        loop = asyncio.get_running_loop()
        server.ejected_until = loop.time() + seconds
        self._set_health(service, server, DOWN, f"ejected for {seconds:g}s: {reason}")
        task = loop.create_task(self._end_ejection(service, server, seconds))
        self._ejections.add(task)
        task.add_done_callback(self._ejections.discard)

    async def _end_ejection(self, service: Service, server: RealServer, seconds: float) -> None:
        await asyncio.sleep(seconds)
        # The table may have been reloaded meanwhile: the service and server as they are now.
        now = self.table.services.get(service.ident)
        real = None if now is None else now.find_server(server.address)
        if now is None or real is None:
            return
        check = now.check_of(real) or CheckSpec("tcp", timeout=EJECTION_PROBE_TIMEOUT)
        result = await probe(check, real.address.host, real.address.port)
        real.ejected_until = 0.0
        if not result.ok:
            self._start_ejection(now, real, f"still failing: {result.describe()}")
            return
        if real.checks is not None:  # the checks start again from a passing server
            real.checks = Health(real.checks.rise, real.checks.fall, since=time.time())
        self._set_health(now, real, UP, f"ejection over, check passed: {result.describe()}")

    def _set_health(self, service: Service, server: RealServer, health: str, why: str) -> None:
        server.health = health
        self._restate(service, server)
        where = f"service {service.ident}: server {format_address(server.address)}"
        log.warning("%s is %s: %s", where, server.state, why)

    # -- states and slow start ----------------------------------------------------------------

    def _restate(self, service: Service, server: RealServer) -> None:
        """The server's health or admin state changed: its state follows, the scheduler is
        told, and a server back `up` starts its slow start."""
        if server.update_state(time.time()):
            service.scheduler.server_changed(server)
            if server.state == UP:
                self._slow_start(service, server)

    def _slow_start(self, service: Service, server: RealServer) -> None:
        if slowstart.begin(service, server, time.monotonic()):
            self._keep_ramping()

    def _keep_ramping(self) -> None:
        if self._ramping is None:
            self._ramping = asyncio.get_running_loop().create_task(self._ramp())

    async def _ramp(self) -> None:
        """Step the slow starts of the table (as it is at each step) until none is left."""
        try:
            going = True
            while going:
                await asyncio.sleep(slowstart.RAMP_STEP)
                going = slowstart.step(self.table.services.values(), time.monotonic())
        finally:
            self._ramping = None

    async def _open(self, service: Service) -> ServiceListener:
        # No two services of the table overlap (Table refuses it), so SO_REUSEPORT never
        # lets two of ours share an address and split its connections.
        listener = ServiceListener(service, self.reuse_port)
        await listener.open()
        self._wire(listener)
        return listener

    def _wire(self, listener: ServiceListener) -> None:
        """Point the listener's requests at the access log its service's settings ask for,
        its servers failing in a row at the ejection, and its handshakes at the service's
        TLS version."""
        listener.on_outlier = self._eject
        listener.follow_tls()
        if self.access_log is not None:
            listener.access = self.access_log
        elif listener.service.settings.access_log:
            if self._stderr_log is None:
                self._stderr_log = AccessLog("-")
            listener.access = self._stderr_log
        else:
            listener.access = None

    async def stop(self, ident: str | None = None) -> None:
        """Stop accepting; open connections finish within `drain_seconds`, then are cut."""
        for service in self._selected(ident):
            listener = self._listeners.pop(service.ident, None)
            if listener is not None:
                self._drain(listener)

    def _drain(self, listener: ServiceListener) -> None:
        listener.close()
        task = asyncio.get_running_loop().create_task(listener.drain(self.drain_seconds))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def load_config(self, text: str, filename: str = "<config>") -> None:
        """Replace the whole table with a config file's, or raise ConfigError and keep it.

        Services that keep their ident and listen address keep running on the new settings
        without dropping a connection; the others stop. New services start stopped (KTCPVS
        semantics: `--start` follows `-f`).
        """
        from tcpvs.table.config import parse_config  # the grammar module imports the table

        try:
            new_table = parse_config(text, filename)
        except ConfigError:
            self.loads["failed"] += 1
            raise
        self.loads["ok"] += 1
        for ident, listener in list(self._listeners.items()):
            new_service = new_table.services.get(ident)
            if (
                new_service is None
                or new_service.listen != listener.service.listen
                or (new_service.certs is None) != (listener.service.certs is None)
            ):
                del self._listeners[ident]
                self._drain(listener)
        for ident, new_service in new_table.services.items():
            old = self.table.services.get(ident)
            if old is not None:
                _carry_counters(old, new_service)
            running = self._listeners.get(ident)
            if running is not None:
                running.adopt(new_service)
                self._wire(running)
        self.table = new_table
        if any(s.ramp_start for svc in new_table.services.values() for s in svc.servers):
            self._keep_ramping()  # slow starts carried over go on from where they were

    def snapshot(self, ident: str | None = None) -> dict[str, Any]:
        return {**snapshot(self.table, ident), "reloads": dict(self.loads)}

    async def close(self) -> None:
        """Stop every service and wait until their connections have finished (or were cut)."""
        await self.stop()
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
        if self._stderr_log is not None:
            await self._stderr_log.close()
            self._stderr_log = None
        if self._checker is not None:
            await self._checker.close()
            self._checker = None
        for task in list(self._ejections):
            task.cancel()
        if self._ramping is not None:
            self._ramping.cancel()


def _server_address(server: str | Address) -> Address:
    """The address a server argument names (TableError if it names none)."""
    if isinstance(server, Address):
        return server
    try:
        return parse_address(server, DEFAULT_SERVER_PORT)
    except ValueError:
        raise TableError("illegal address:port specified") from None


def _carry_counters(old: Service, new: Service) -> None:
    """Keep statistics across a reload for servers that are still there (not live counts)."""
    new.stats.carry_counters(old.stats)
    for server in new.servers:
        previous = old.find_server(server.address)
        if previous is not None:
            server.carry_counters(previous)
