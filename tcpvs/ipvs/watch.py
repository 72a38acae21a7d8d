"""`pyipvsadm --apply FILE --watch`: keep the kernel's IPVS table equal to FILE, with the real
servers' health checked (keepalived's job), until SIGTERM or SIGINT.

Each tick (every TICK seconds, and at once when a server's health changes) reads the whole
table back (IPVS sends no change notifications), computes the target (the file, with a down
server's weight 0) and carries out converge()'s corrections, one log line each. SIGHUP reads
FILE again; a file with an error is logged and the rules in force stay. Exiting leaves the
table as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import TextIO

from tcpvs.health.state import Health
from tcpvs.ipvs.aio import AsyncIPVS
from tcpvs.ipvs.api import IPVS
from tcpvs.ipvs.apply import DesiredState, DesiredStateError, parse_desired
from tcpvs.ipvs.checks import Checks
from tcpvs.ipvs.converge import (
    ServerKey,
    converge,
    explain,
    probes,
    server_key,
    server_name,
    service_name,
    target,
)
from tcpvs.ipvs.errors import IPVSError

TICK = 1.0


class Watcher:
    def __init__(
        self,
        ipvs: AsyncIPVS,
        path: str,
        desired: DesiredState,
        *,
        prog: str,
        err: TextIO,
        drain_timeout: float,
        remove_down: bool,
    ) -> None:
        self.ipvs, self.path, self.desired = ipvs, path, desired
        self.prog, self.err = prog, err
        self.drain_timeout, self.remove_down = drain_timeout, remove_down
        self.checks = Checks(self._health_changed)
        self.draining: dict[ServerKey, float] = {}
        self.wake = asyncio.Event()
        self.stopping = self.reloading = False

    def log(self, message: str) -> None:
        self.err.write(f"{self.prog}: {message}\n")
        self.err.flush()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGHUP: self._reload,
            signal.SIGTERM: self._stop,
            signal.SIGINT: self._stop,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        self.log(f"watching {self.path}: {self._summary()}")
        self.checks.update(probes(self.desired))
        try:
            while not self.stopping:
                if self.reloading:
                    self.reloading = False
                    if self.read_file():
                        self.checks.update(probes(self.desired))
                self.wake.clear()
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self.wake.wait()
        finally:
            await self.checks.close()
            for signum in handlers:
                loop.remove_signal_handler(signum)
        self.log("stopped; the IPVS table stays as it is")
        return 0

    def _reload(self) -> None:
        self.reloading = True
        self.wake.set()

    def _stop(self) -> None:
        self.stopping = True
        self.wake.set()

    def _summary(self) -> str:
        services = self.desired.services
        servers = sum(len(s.dests) for s in services)
        return (
            f"{_count(len(services), 'service')}, {_count(servers, 'server')}, "
            f"{_count(len(self.desired.checks), 'check')}"
        )

    def read_file(self) -> bool:
        """SIGHUP: the file again; when it is wrong, say where and keep the rules in force."""
        try:
            with open(self.path) as fh:
                desired = parse_desired(fh.read(), self.path, self.prog)
        except OSError as exc:
            self.log(f"{self.path}: {exc.strerror}; the rules in force stay")
            return False
        except DesiredStateError as exc:
            self.log(f"{exc}; the rules in force stay")
            return False
        self.desired = desired
        self.log(f"reloaded {self.path}: {self._summary()}")
        return True

    async def tick(self) -> None:
        """Read the table, correct what differs from the target (stopping at a kernel error:
        the next tick plans again from what is there)."""
        try:
            current = await self.ipvs.state()
        except IPVSError as exc:
            self.log(f"cannot read the IPVS table: {exc.message}")
            return
        wanted = target(self.desired.services, self.checks.down(), self.remove_down)
        ops, self.draining = converge(
            current, wanted, self.draining, time.monotonic(), self.drain_timeout
        )
        for op in ops:
            self.log(explain(op, current, self.desired.services))
            method, args = op.call()
            try:
                await getattr(self.ipvs, method)(*args)
            except IPVSError as exc:
                self.log(f"{op.command()}: {exc.message}")
                return

    def _health_changed(self, key: ServerKey, health: Health) -> None:
        service, dest = next(
            (s.service, d)
            for s in self.desired.services
            for d in s.dests
            if server_key(s.service, d) == key
        )
        state = "up" if health.up else "down"
        where = f"service {service_name(service)}: server {server_name(service, dest)}"
        self.log(f"{where} is {state}: {health.reason()}")
        self.wake.set()


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def watch(
    ipvs: IPVS,
    path: str,
    desired: DesiredState,
    *,
    prog: str,
    err: TextIO,
    drain_timeout: float,
    remove_down: bool,
) -> int:
    """Run the watcher on its own event loop until SIGTERM or SIGINT; returns 0."""

    async def main() -> int:
        watcher = Watcher(
            AsyncIPVS(ipvs),
            path,
            desired,
            prog=prog,
            err=err,
            drain_timeout=drain_timeout,
            remove_down=remove_down,
        )
        return await watcher.run()

    return asyncio.run(main())
