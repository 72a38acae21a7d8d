"""`--watch`'s planning, sans-IO: which servers are checked (probes), the table the kernel
should hold given the file and the servers' health (target), the corrections that get it
there without blocking on drains (converge), and the log line of each correction (explain).

A server is known by its ServerKey, (Service.key, Dest.key): the same server in two services
is checked, and judged, once per service.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tcpvs.health.spec import CheckSpec
from tcpvs.ipvs import uapi
from tcpvs.ipvs.apply import (
    ADD_SERVER,
    ADD_SERVICE,
    DELETE_SERVER,
    DELETE_SERVICE,
    DRAIN_SERVER,
    EDIT_SERVER,
    EDIT_SERVICE,
    DesiredState,
    Op,
    plan,
)
from tcpvs.ipvs.model import FWD_NAMES, PROTOCOL_NAMES, Dest, Service, ServiceState
from tcpvs.ipvs.names import addrport_to_anyname

ServerKey = tuple[tuple, tuple]

_SERVICE_SETTINGS = ("scheduler", "flags", "persistence timeout", "netmask", "pe")
_SERVER_SETTINGS = ("forwarding", "weight", "u-threshold", "l-threshold", "tunnel")


@dataclass(frozen=True)
class Probe:
    """One server's check and where it goes (spec.port, when set, replaces `port`)."""

    spec: CheckSpec
    host: str
    port: int


def server_key(service: Service, dest: Dest) -> ServerKey:
    return (service.key, dest.key)


def probes(desired: DesiredState) -> dict[ServerKey, Probe]:
    """Every real server of a service with a check, with that check."""
    return {
        server_key(state.service, d): Probe(spec, d.addr, d.port)
        for state in desired.services
        if (spec := desired.checks.get(state.service.key)) is not None
        for d in state.dests
    }


def target(
    desired: Sequence[ServiceState], down: Collection[ServerKey], remove_down: bool = False
) -> list[ServiceState]:
    """The file's state with the health in: a down server weighs 0 (keepalived's
    inhibit_on_failure: its open connections go on, it takes no new ones), or is left out
    with remove_down (then drained and deleted as a server gone from the file)."""
    wanted = []
    for state in desired:
        dests = []
        for d in state.dests:
            if server_key(state.service, d) not in down:
                dests.append(d)
            elif not remove_down:
                dests.append(d.with_(weight=0))
        wanted.append(ServiceState(state.service, tuple(dests)))
    return wanted


def converge(
    current: Sequence[ServiceState],
    wanted: Sequence[ServiceState],
    draining: Mapping[ServerKey, float],
    now: float,
    drain_timeout: float,
) -> tuple[list[Op], dict[ServerKey, float]]:
    """apply.plan() without its wait, for a loop that calls this again each tick: a drained
    server is deleted (and a removed service with it) by the first call that finds its
    ActiveConn at 0 or drain_timeout passed since its drain began. `draining` maps a server
    to when its drain began; the second value returned is its next version. A server already
    at weight 0 is not drained again."""
    ops = plan(current, wanted)
    have = {server_key(s.service, d): d for s in current for d in s.dests}
    services = {s.service.key: s for s in current}
    since = {_key(op): draining.get(_key(op), now) for op in ops if op.kind == DRAIN_SERVER}

    def drained(key: ServerKey) -> bool:
        return have[key].active_conns == 0 or now - since[key] >= drain_timeout

    kept: list[Op] = []
    gone: set[ServerKey] = set()
    for op in ops:
        if op.kind == DRAIN_SERVER and have[_key(op)].weight == 0:
            continue
        if op.kind == DELETE_SERVER:
            if not drained(_key(op)):
                continue
            gone.add(_key(op))
        if op.kind == DELETE_SERVICE:
            keys = [server_key(op.service, d) for d in services[op.service.key].dests]
            if not all(map(drained, keys)):
                continue
            gone.update(keys)
        kept.append(op)
    return kept, {key: when for key, when in since.items() if key not in gone}


def _key(op: Op) -> ServerKey:
    assert op.dest is not None
    return server_key(op.service, op.dest)


def service_name(svc: Service) -> str:
    """`TCP 10.0.0.1:80`, `FWM 5`: as `ipvsadm -Ln` names it, single-spaced."""
    if svc.fwmark:
        return f"FWM {svc.fwmark}" + (" IPv6" if svc.af == uapi.AF_INET6 else "")
    where = addrport_to_anyname(svc.af, svc.addr, svc.port, svc.protocol, True)
    return f"{PROTOCOL_NAMES.get(svc.protocol, '?')} {where}"


def server_name(svc: Service, dest: Dest) -> str:
    return addrport_to_anyname(dest.af, dest.addr, dest.port, svc.protocol, True)


def explain(op: Op, current: Sequence[ServiceState], desired: Sequence[ServiceState]) -> str:
    """The log line of a correction: what is wrong in the kernel (`current`, measured
    against the file's `desired`), then what is done, as an ipvsadm command line."""
    where = f"service {service_name(op.service)}"
    if op.dest is not None:
        where += f": server {server_name(op.service, op.dest)}"
    return f"{where} {_wrong(op, current, desired)}: {op.command()}"


def _wrong(op: Op, current: Sequence[ServiceState], desired: Sequence[ServiceState]) -> str:
    if op.kind in (ADD_SERVICE, ADD_SERVER):
        return "is missing"
    old = next(s for s in current if s.service.key == op.service.key)
    if op.kind == EDIT_SERVICE:
        return f"has {_differences(_SERVICE_SETTINGS, old.service.settings(), op.service)}"
    if op.kind == DELETE_SERVICE:
        return "is not in the file"
    dest = op.dest
    assert dest is not None
    was = next(d for d in old.dests if d.key == dest.key)
    in_file = {server_key(s.service, d): d for s in desired for d in s.dests}.get(_key(op))
    if op.kind == EDIT_SERVER:
        why = " (down)" if in_file is not None and in_file.weight != dest.weight else ""
        return f"has {_differences(_SERVER_SETTINGS, was.settings(), dest)}{why}"
    gone = "is not in the file" if in_file is None else "is down"
    if op.kind == DRAIN_SERVER:
        return f"{gone}, draining"
    left = was.active_conns
    return f"{gone}, " + (f"drain timeout passed with {left} active" if left else "drained")


def _differences(names: Sequence[str], old: tuple[Any, ...], new: Service | Dest) -> str:
    """`weight 7 (want 1)`, for each setting that differs."""
    return ", ".join(
        f"{name} {_text(name, a)} (want {_text(name, b)})"
        for name, a, b in zip(names, old, new.settings(), strict=True)
        if a != b
    )


def _text(name: str, value: Any) -> str:
    if name == "forwarding":
        return FWD_NAMES.get(value, str(value))
    return hex(value) if name == "flags" else str(value)
