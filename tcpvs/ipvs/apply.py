"""`pyipvsadm --apply FILE`: make the kernel match a desired state written as ipvsadm-save lines.

parse_desired() reads the file (only -A and -a lines, an -A line may end with `--check SPEC`;
errors as FILE:LINE: message), plan() is the pure diff (current + desired -> ordered
operations) and execute() carries it out, draining real servers before deleting them: weight
0, wait until ActiveConn is 0 or the drain timeout passes, then delete.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tcpvs.errors import TcpvsError
from tcpvs.health.quoting import unquote
from tcpvs.ipvs.api import IPVS
from tcpvs.ipvs.listing import dest_rule, service_rule, svc_name
from tcpvs.ipvs.model import Dest, Service, ServiceState
from tcpvs.ipvs.names import addrport_to_anyname
from tcpvs.ipvs.options import (
    CMD_ADD,
    CMD_ADDDEST,
    FMT_NUMERIC,
    FMT_RULE,
    Exit,
    LineFailed,
    parse,
    restore_tokens,
)

if TYPE_CHECKING:
    from tcpvs.health.spec import CheckSpec

ADD_SERVICE, EDIT_SERVICE, ADD_SERVER, EDIT_SERVER = (
    "add-service",
    "edit-service",
    "add-server",
    "edit-server",
)
DRAIN_SERVER, DELETE_SERVER, DELETE_SERVICE = "drain-server", "delete-server", "delete-service"


# `--check` ends an -A line: the rest of the line is the check (tcpvs's `check =` grammar),
# bare or in double quotes with \" and \\ escaped, the check grammar's own quoting.
CHECK_OPTION = "--check"
_CHECK_WORD = re.compile(r"(?:^|[ \t\r])--check(?=[ \t\r]|$)")


class DesiredStateError(TcpvsError):
    """The desired-state file is wrong; str() is `FILE:LINE: message`."""


@dataclass(frozen=True)
class DesiredState:
    """What a file describes: services with their real servers in file order, and the health
    check of each service that has one (by Service.key)."""

    services: list[ServiceState]
    checks: dict[tuple, CheckSpec]


@dataclass(frozen=True)
class Op:
    """One step of a plan; command() is the equivalent ipvsadm command line."""

    kind: str
    service: Service
    dest: Dest | None = None

    def command(self) -> str:
        name = svc_name(self.service, FMT_RULE | FMT_NUMERIC)
        if self.kind in (ADD_SERVICE, EDIT_SERVICE):
            return service_rule(self.service, name, "-A" if self.kind == ADD_SERVICE else "-E")
        if self.kind == DELETE_SERVICE:
            return f"-D {name}"
        d = _dest(self)
        dname = addrport_to_anyname(d.af, d.addr, d.port, self.service.protocol, True)
        if self.kind == DELETE_SERVER:
            return f"-d {name} -r {dname}"
        weight = d.with_(weight=0) if self.kind == DRAIN_SERVER else d
        line = dest_rule(name, dname, weight, "-a" if self.kind == ADD_SERVER else "-e")
        line += f" -x {d.u_threshold}" if d.u_threshold else ""
        return line + (f" -y {d.l_threshold}" if d.l_threshold else "")

    def call(self) -> tuple[str, tuple[Service] | tuple[Service, Dest]]:
        """The method (same name on IPVS and AsyncIPVS) and arguments that carry it out."""
        method = _METHODS[self.kind]
        if self.dest is None:
            return method, (self.service,)
        dest = self.dest.with_(weight=0) if self.kind == DRAIN_SERVER else self.dest
        return method, (self.service, dest)


_METHODS = {
    ADD_SERVICE: "add_service",
    EDIT_SERVICE: "edit_service",
    DELETE_SERVICE: "delete_service",
    ADD_SERVER: "add_dest",
    EDIT_SERVER: "edit_dest",
    DRAIN_SERVER: "edit_dest",
    DELETE_SERVER: "delete_dest",
}


def split_check(line: str) -> tuple[str, str | None]:
    """A line without its `--check SPEC` end, and SPEC unquoted (None when there is none)."""
    found = _CHECK_WORD.search(line)
    if found is None:
        return line, None
    spec = line[found.end() :].strip(" \t\r")
    return line[: found.start()], unquote(spec)


def _parse_check(text: str) -> CheckSpec | None:
    # The check grammar imports `regex` (about 30 ms): only files with a check pay for it.
    from tcpvs.health.spec import parse_check

    return parse_check(text)


def parse_desired(text: str, filename: str, prog: str = "pyipvsadm") -> DesiredState:
    """The services, real servers and checks an ipvsadm-save file describes, in file order."""
    services: dict[tuple, Service] = {}
    dests: dict[tuple, dict[tuple, Dest]] = {}
    checks: dict[tuple, CheckSpec] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        rule, check = split_check(line)
        tokens = restore_tokens(rule)
        comment = bool(tokens) and tokens[0].startswith("#")
        if comment or (not tokens and check is None):
            continue

        def error(message: str, lineno: int = lineno) -> DesiredStateError:
            return DesiredStateError(f"{filename}:{lineno}: {message}")

        if not tokens:
            raise error(f"{CHECK_OPTION} belongs at the end of a service's -A line")
        try:
            cmd = parse([prog, *tokens])
        except Exit as exc:
            raise error((exc.err or exc.out).strip() or "invalid line") from None
        except LineFailed as exc:
            raise error(str(exc)) from None
        if cmd.cmd not in (CMD_ADD, CMD_ADDDEST):
            raise error("only -A and -a lines can describe a desired state")
        svc = cmd.service()
        if cmd.cmd == CMD_ADD:
            if svc.key in services:
                raise error("Service already exists")
            services[svc.key] = svc
            dests[svc.key] = {}
            try:
                spec = None if check is None else _parse_check(check)
            except ValueError as exc:
                raise error(str(exc)) from None
            if spec is not None:
                checks[svc.key] = spec
            continue
        if check is not None:
            raise error(f"{CHECK_OPTION} belongs at the end of a service's -A line")
        if svc.key not in services:
            raise error("Service not defined")
        dest = cmd.real_server()
        if dest.key in dests[svc.key]:
            raise error("Destination already exists")
        spec = checks.get(svc.key)
        if spec is not None and spec.port is None and not dest.port:
            raise error(f"check: server {dest.addr} has no port: give the check one (port N)")
        dests[svc.key][dest.key] = dest
    return DesiredState(
        [ServiceState(s, tuple(dests[k].values())) for k, s in services.items()], checks
    )


def plan(current: Sequence[ServiceState], desired: Sequence[ServiceState]) -> list[Op]:
    """The operations that turn `current` into `desired`, in a safe order.

    Services and servers are created or edited first, then the servers to remove are
    drained (weight 0), then deleted, then the services to remove are deleted.
    """
    have = {s.service.key: s for s in current}
    want = {s.service.key for s in desired}
    ops: list[Op] = []
    for state in desired:
        svc = state.service
        old = have.get(svc.key)
        if old is None:
            ops.append(Op(ADD_SERVICE, svc))
            ops += [Op(ADD_SERVER, svc, d) for d in state.dests]
            continue
        if old.service.settings() != svc.settings():
            ops.append(Op(EDIT_SERVICE, svc))
        old_dests = {d.key: d for d in old.dests}
        for d in state.dests:
            if d.key not in old_dests:
                ops.append(Op(ADD_SERVER, svc, d))
            elif old_dests[d.key].settings() != d.settings():
                ops.append(Op(EDIT_SERVER, svc, d))
    drains: list[Op] = []
    for old in current:
        keep = {d.key for s in desired if s.service.key == old.service.key for d in s.dests}
        drains += [Op(DRAIN_SERVER, old.service, d) for d in old.dests if d.key not in keep]
    ops += drains
    ops += [Op(DELETE_SERVER, o.service, o.dest) for o in drains if o.service.key in want]
    ops += [Op(DELETE_SERVICE, s.service) for s in current if s.service.key not in want]
    return ops


def _dest(op: Op) -> Dest:
    assert op.dest is not None
    return op.dest


def execute(
    ipvs: IPVS,
    ops: Sequence[Op],
    drain_timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.5,
) -> None:
    """Carry out a plan; IPVSError stops it at the failing step."""
    drained = [op for op in ops if op.kind == DRAIN_SERVER]
    waited = False
    for op in ops:
        if op.kind in (DELETE_SERVER, DELETE_SERVICE) and drained and not waited:
            wait_drained(
                ipvs, drained, clock() + drain_timeout, clock=clock, sleep=sleep, poll=poll
            )
            waited = True
        method, args = op.call()
        getattr(ipvs, method)(*args)


def wait_drained(
    ipvs: IPVS,
    drained: Sequence[Op],
    deadline: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll: float,
) -> None:
    """Poll until no drained server has active connections, or until the deadline."""
    groups: dict[tuple, tuple[Service, set[tuple]]] = {}
    for op in drained:
        groups.setdefault(op.service.key, (op.service, set()))[1].add(_dest(op).key)
    while True:
        busy = any(
            d.active_conns
            for svc, keys in groups.values()
            for d in ipvs.dests(svc)
            if d.key in keys
        )
        if not busy or clock() >= deadline:
            return
        sleep(min(poll, max(0.0, deadline - clock())))
