"""A Port that records what an exchange asks for, and helpers to build the service it runs on:
the exchanges are driven event by event, without sockets or a loop."""

from __future__ import annotations

from typing import Any

from tcpvs.exchange import http1
from tcpvs.exchange.base import Port, Site
from tcpvs.exchange.http1 import HttpExchange
from tcpvs.exchange.tcp import TcpExchange
from tcpvs.sched.base import Scheduler
from tcpvs.table.config import parse_config
from tcpvs.table.model import RealServer, Service

CLIENT = ("192.0.2.7", 40000)


class Recorder(Port):
    """Every action, in order, as (name, argument) tuples; open_server answers `pooled`."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, Any]] = []
        self.pooled = True

    def send_client(self, data: bytes) -> None:
        self.actions.append(("client", bytes(data)))

    def send_server(self, data: bytes) -> None:
        self.actions.append(("server", bytes(data)))

    def pass_to_client(self, nbytes: int) -> None:
        self.actions.append(("pass", nbytes))

    def open_server(self, server: RealServer, fresh: bool = False) -> bool:
        self.actions.append(("open", (str(server.address), fresh)))
        return self.pooled and not fresh

    def release_server(self) -> None:
        self.actions.append(("release", None))

    def drop_server(self) -> None:
        self.actions.append(("drop", None))

    def hold_client(self, hold: bool) -> None:
        self.actions.append(("hold", hold))

    def tunnel(self) -> None:
        self.actions.append(("tunnel", None))

    def close_client(self) -> None:
        self.actions.append(("close", None))

    def abort_client(self) -> None:
        self.actions.append(("abort", None))

    def transferred(self) -> tuple[int, int]:
        return 0, len(self.sent_to_client())

    def take(self) -> list[tuple[str, Any]]:
        """The actions since the last call."""
        actions, self.actions = self.actions, []
        return actions

    def sent_to_client(self) -> bytes:
        return b"".join(arg for name, arg in self.actions if name == "client")

    def names(self) -> list[str]:
        return [name for name, _ in self.actions]


class Ledger(Scheduler):
    """wlc, and a log of what the engine tells a scheduler (taken and released)."""

    name = "ledger"
    http = True
    log: list[tuple[str, str]] = []

    def select(self, servers, ctx):
        from tcpvs.sched.leastconn import weighted_least_conns

        return weighted_least_conns(servers)

    def taken(self, server, ctx):
        self.log.append(("taken", str(server.address)))

    def released(self, server):
        self.log.append(("released", str(server.address)))


def service(body: str, scheduler: str = "http") -> Service:
    """The service `t` of a config whose Virtual block holds `body` (listen and scheduler set);
    scheduler "ledger": a Ledger (not registered: other tests list the registered ones)."""
    name = "http" if scheduler == "ledger" else scheduler
    text = f"Virtual t {{\n    listen = 127.0.0.1:8080\n    scheduler = {name}\n{body}\n}}\n"
    svc = parse_config(text, "<test>").services["t"]
    if scheduler == "ledger":
        svc.scheduler = Ledger()
    return svc


class Harness:
    """One exchange on its site, its recorder, and the transitions it made."""

    def __init__(self, svc: Service, kind: type = HttpExchange) -> None:
        self.site = Site(svc)
        self.site.now = 100.0
        self.port = Recorder()
        self.exchange = kind(self.site, self.port, CLIENT)
        self.transitions: list[tuple[int, int]] = []

    @property
    def service(self) -> Service:
        return self.site.service

    def state(self) -> str:
        return http1.NAMES[self.exchange.state]

    def expire(self, seconds: float) -> bool:
        """Let `seconds` pass; True (and timeout() called) when the state's time ran out."""
        self.site.now += seconds
        if self.exchange.expired(self.site.now):
            self.exchange.timeout()
            return True
        return False


def start_tcp(svc: Service) -> Harness:
    lab = Harness(svc, TcpExchange)
    lab.exchange.start()
    return lab
