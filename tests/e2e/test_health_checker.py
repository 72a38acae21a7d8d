"""The checker against real servers on 127.0.0.1, on asyncio and on uvloop: every server checked
about once per interval; maintenance pauses a server's checks; a reload (new objects, same
servers) keeps their pace and reports to the new objects; a changed check starts over; a
server gone is no longer checked (its check in flight closed, unreported); nothing is left
open after close()."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import uvloop

from tcpvs.health.checker import Checker
from tcpvs.health.result import CheckResult
from tcpvs.health.spec import CheckSpec, parse_check
from tcpvs.table.addr import Address
from tcpvs.table.model import MAINT, READY
from tests.support.mute import mute_server

FAST = "interval 0.2 timeout 0.1"  # checks about every 0.18 to 0.22 s


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    return asyncio.run if request.param == "asyncio" else uvloop.run


def spec(text: str) -> CheckSpec:
    parsed = parse_check(text)
    assert parsed is not None
    return parsed


@dataclass(eq=False)
class Server:  # what the checker reads of a RealServer
    address: Address
    admin: str = READY


@dataclass(eq=False)
class Service:  # what the checker reads of a Service
    ident: str
    check: CheckSpec

    def check_of(self, server: Server) -> CheckSpec:
        return self.check


class Table:
    """The checked servers the checker is given, and the results it reports, by address."""

    def __init__(self, service: Service, servers: list[Server]) -> None:
        self.pairs = [(service, server) for server in servers]
        self.reports: list[tuple[Service, Server, CheckResult]] = []

    def servers(self) -> list[tuple[Service, Server]]:
        return list(self.pairs)

    def report(self, service: Service, server: Server, result: CheckResult) -> None:
        self.reports.append((service, server, result))

    def count(self, port: int) -> int:
        return sum(1 for _, server, _ in self.reports if server.address.port == port)


@contextlib.asynccontextmanager
async def listening(count: int) -> AsyncIterator[list[int]]:
    """`count` servers that accept and close (what a tcp check needs)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    servers = [await asyncio.start_server(serve, "127.0.0.1", 0) for _ in range(count)]
    try:
        yield [server.sockets[0].getsockname()[1] for server in servers]
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_server_is_checked_once_per_interval_and_maint_pauses_it(run) -> None:
    async def main() -> None:
        async with listening(3) as ports:
            service = Service("web", spec(f"tcp {FAST}"))
            servers = [Server(Address("127.0.0.1", port)) for port in ports]
            table = Table(service, servers)
            checker = Checker(table.servers, table.report)
            checker.start()
            await asyncio.sleep(1.1)
            counts = [table.count(port) for port in ports]
            # first checks within the first interval, then one every 0.18-0.22 s: 5 or 6
            assert all(4 <= n <= 7 for n in counts), counts
            assert all(result.ok for _, _, result in table.reports)
            assert {id(s) for _, s, _ in table.reports} == {id(s) for s in servers}
            servers[0].admin = MAINT
            await asyncio.sleep(0.3)  # a check of it may have been running
            paused = table.count(ports[0])
            await asyncio.sleep(0.6)
            assert table.count(ports[0]) == paused  # not checked in maintenance
            assert table.count(ports[1]) >= counts[1] + 3  # the others are
            servers[0].admin = READY
            await asyncio.sleep(0.5)
            assert table.count(ports[0]) > paused
            await checker.close()

    run(main())


def test_a_reload_keeps_the_pace_and_reports_to_the_new_objects(run) -> None:
    async def main() -> None:
        async with listening(2) as ports:
            service = Service("web", spec(f"tcp {FAST}"))
            table = Table(service, [Server(Address("127.0.0.1", port)) for port in ports])
            checker = Checker(table.servers, table.report)
            checker.start()
            await asyncio.sleep(0.5)
            watches = dict(checker.watches)
            # a reload: every object new, the same servers and an equal check
            reloaded = Service("web", spec(f"tcp {FAST}"))
            new_servers = [Server(Address("127.0.0.1", port)) for port in ports]
            table.pairs = [(reloaded, server) for server in new_servers]
            checker.reconcile()
            assert checker.watches == watches  # the same watches: no check restarted
            before = len(table.reports)
            await asyncio.sleep(0.6)
            after = table.reports[before:]
            assert len(after) >= 4
            assert {(id(svc), id(srv)) for svc, srv, _ in after} == {
                (id(reloaded), id(server)) for server in new_servers
            }
            await checker.close()

    run(main())


def test_a_changed_check_starts_over_and_a_server_gone_is_no_longer_checked(run) -> None:
    async def main() -> None:
        async with mute_server() as (mute_port, ends), listening(1) as (port,):
            service = Service("web", spec(f"tcp {FAST}"))
            table = Table(service, [Server(Address("127.0.0.1", port))])
            checker = Checker(table.servers, table.report)
            checker.start()
            await asyncio.sleep(0.3)
            (key,) = checker.watches
            first = checker.watches[key]
            service.check = spec("http interval 0.3 timeout 0.2")
            checker.reconcile()
            assert checker.watches[key] is not first  # a new watch, a new first check
            # a server that never answers: its http check waits for its timeout, then gone
            silent = Server(Address("127.0.0.1", mute_port))
            table.pairs.append((service, silent))
            checker.reconcile()
            for _ in range(100):  # until its check is running
                if checker.watches[("web", silent.address)].check is not None:
                    break
                await asyncio.sleep(0.01)
            reported = table.count(mute_port)
            table.pairs.pop()
            checker.reconcile()
            await asyncio.wait_for(ends.get(), 5)  # its connection closed at once
            await asyncio.sleep(0.4)
            assert table.count(mute_port) == reported == 0  # cancelled, not a timeout
            assert list(checker.watches) == [key]
            await checker.close()

    run(main())


def test_close_leaves_nothing_open(run) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as mute:  # accepts, never answers
            before = open_fds()
            service = Service("web", spec("http interval 0.2 timeout 0.15"))
            table = Table(service, [Server(Address("127.0.0.1", mute.getsockname()[1]))])
            checker = Checker(table.servers, table.report)
            checker.start()
            await asyncio.sleep(0.5)
            assert {result.error for _, _, result in table.reports} == {"timeout"}
            await checker.close()
            await checker.close()  # twice is harmless
            assert open_fds() == before

    run(main())
