"""Snapshots of the table as plain data (for the control socket, --json and -L), and the text
layouts printed from them: KTCPVS's `-L` block (itself a valid config file) and `--stats`.

No I/O except name lookups for non-numeric listings (through tcpvs.table.addr).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tcpvs._version import __version__
from tcpvs.health.spec import format_check
from tcpvs.table.addr import Address, format_address
from tcpvs.table.counters import LATENCY_BOUNDS
from tcpvs.table.model import UP, RealServer, Rule, Service
from tcpvs.table.operations import Table
from tcpvs.table.settings import SETTINGS, Setting
from tcpvs.tls.settings import DEFAULT_TLS_MIN

INDENT = "    "


def server_snapshot(server: RealServer) -> dict[str, Any]:
    checks = server.checks
    return {
        "host": server.address.host,
        "port": server.address.port,
        "weight": server.configured,
        # what schedulers use now: less than `weight` during a slow start
        "effective_weight": server.weight,
        "state": server.state,
        "admin": server.admin,
        "health": server.health,
        "since": server.since or None,
        "check": None if checks is None or checks.last is None else checks.last.as_dict(),
        "checks": None if checks is None else {"passed": checks.passed, "failed": checks.failed},
        "tls": server.tls,
        "tls_name": server.tls_name,
        # its own check (`none`: not checked), None: its service's
        "own_check": format_check(server.check) if server.own_check else None,
        "stats": server.stats(),
    }


def rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "pattern": rule.pattern,
        "match": rule.match,
        "servers": [_host_port(s) for s in rule.servers],
    }


def _host_port(server: RealServer) -> dict[str, Any]:
    return {"host": server.address.host, "port": server.address.port}


def service_snapshot(service: Service) -> dict[str, Any]:
    return {
        "ident": service.ident,
        "listen": {"host": service.listen.host, "port": service.listen.port},
        "scheduler": service.scheduler_name,
        "running": service.running,
        "settings": service.settings.as_dict(),
        "check": None if service.check is None else format_check(service.check),
        "tls": [] if service.certs is None else list(service.certs.paths),
        "tls_min": DEFAULT_TLS_MIN if service.certs is None else service.certs.tls_min,
        "tls_ca": None if service.upstream is None else service.upstream.ca_file,
        "tls_verify": service.upstream is None or service.upstream.verify,
        "redirect_https": service.redirect_https,
        "redirect": (
            None
            if service.redirect is None
            else {"host": service.redirect.host, "port": service.redirect.port}
        ),
        "servers": [server_snapshot(s) for s in service.servers],
        "rules": [rule_snapshot(rule) for rule in service.rules],
        "sni_rules": [
            {"pattern": rule.pattern, "servers": [_host_port(s) for s in rule.servers]}
            for rule in service.sni_rules
        ],
        "stats": {**service.stats.as_dict(), "retries_denied": service.budget.denied},
    }


def snapshot(table: Table, ident: str | None = None) -> dict[str, Any]:
    """The whole table (or one service, TableError if unknown) as JSON-ready data."""
    services = [table.service(ident)] if ident is not None else list(table.services.values())
    return {
        "version": __version__,
        "latency_bounds": list(LATENCY_BOUNDS),
        "services": [service_snapshot(s) for s in services],
    }


def _add_stats(into: dict[str, Any], stats: dict[str, Any]) -> None:
    """Add counters into `into`: numbers, lists of numbers (histogram buckets) and dicts of
    either, by name."""
    for name, value in stats.items():
        if isinstance(value, dict):
            _add_stats(into.setdefault(name, {}), value)
        elif isinstance(value, list):
            mine = into.setdefault(name, [0] * len(value))
            into[name] = [a + b for a, b in zip(mine, value, strict=True)]
        else:
            into[name] = into.get(name, 0) + value


def merge_snapshots(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """One snapshot of the table that several workers serve: the first one's table with every
    counter (a service's and each server's) summed over all of them.

    Services are matched by ident and servers by address, so a worker whose table differs
    adds only what the first one also has.
    """
    merged = copy.deepcopy(snaps[0])
    services = {svc["ident"]: svc for svc in merged["services"]}
    for snap in snaps[1:]:
        for svc in snap["services"]:
            into = services.get(svc["ident"])
            if into is None:
                continue
            _add_stats(into["stats"], svc["stats"])
            servers = {(s["host"], s["port"]): s for s in into["servers"]}
            for server in svc["servers"]:
                if (match := servers.get((server["host"], server["port"]))) is not None:
                    _add_stats(match["stats"], server["stats"])
    return merged


# -- text layouts ---------------------------------------------------------------------------


def render_json(snap: dict[str, Any]) -> str:
    """`--json`: the snapshot itself, stable and complete (counters included)."""
    return json.dumps(snap, indent=2) + "\n"


def _address(data: dict[str, Any], numeric: bool) -> str:
    return format_address(Address(data["host"], data["port"]), numeric=numeric)


def format_setting(spec: Setting, value: Any) -> str:
    """A setting's value as the config grammar reads it back (`on`/`off`, `5`, `0.25`)."""
    if spec.kind is bool:
        return "on" if value else "off"
    if spec.kind is float and float(value).is_integer():
        return str(int(value))
    return repr(value) if spec.kind is float else str(value)


def _service_stats(svc: dict[str, Any]) -> str:
    s = svc["stats"]
    return (
        f"# {'running' if svc['running'] else 'stopped'}: connections {s['conns']} active"
        f" / {s['total_conns']} total, requests {s['requests']}, bytes in {s['bytes_in']}"
        f" / out {s['bytes_out']}, errors {s['errors']}"
    )


def _server_stats(server: dict[str, Any]) -> str:
    s = server["stats"]
    return (
        f"  # {server.get('state', UP)}{_ramp_summary(server)}{_check_summary(server)}:"
        f" connections {s['conns']}"
        f" active / {s['total_conns']} total, requests {s['requests']}, bytes in"
        f" {s['bytes_in']} / out {s['bytes_out']}, failures {s['failures']}"
    )


def _ramp_summary(server: dict[str, Any]) -> str:
    """`, slow start 40 %` after a server's state while it ramps up."""
    effective, weight = server.get("effective_weight", 0), server["weight"]
    if weight <= 0 or effective >= weight:
        return ""
    return f", slow start {100 * effective / weight:.0f} %"


def _check_summary(server: dict[str, Any]) -> str:
    """` (check: HTTP 200 in 1.2 ms)` after a server's state, when it is checked."""
    check = server.get("check")
    if not check:
        return ""
    what = f"HTTP {check['status']}" if check.get("status") else check.get("error") or "ok"
    if check.get("error") and check.get("status"):
        what += f", {check['error']}"
    return f" (check: {what} in {check['duration_ms']:.1f} ms)"


def render_service(svc: dict[str, Any], numeric: bool = True, stats: bool = False) -> list[str]:
    """One `Virtual NAME { ... }` block, as lines (KTCPVS's layout, creation order)."""
    lines = [f"Virtual {svc['ident']} {{"]
    if stats:
        lines.append(INDENT + _service_stats(svc))
    lines.append(f"{INDENT}listen = {_address(svc['listen'], numeric)}")
    lines.append(f"{INDENT}scheduler = {svc['scheduler']}")
    for spec in SETTINGS:
        value = svc["settings"][spec.name]
        # Only the classic settings are always shown: the default layout stays KTCPVS's own.
        if spec.classic or value != spec.default_value():
            lines.append(f"{INDENT}{spec.name} = {format_setting(spec, value)}")
    if svc["redirect"] is not None:
        lines.append(f"{INDENT}redirect = {_address(svc['redirect'], numeric)}")
    if svc.get("redirect_https"):
        lines.append(f"{INDENT}redirect = https")
    if svc.get("check"):
        lines.append(f"{INDENT}check = {svc['check']}")
    lines.extend(f"{INDENT}tls = {path}" for path in svc.get("tls", ()))
    if svc.get("tls_min", DEFAULT_TLS_MIN) != DEFAULT_TLS_MIN:
        lines.append(f"{INDENT}tls_min = {svc['tls_min']}")
    if svc.get("tls_ca"):
        lines.append(f"{INDENT}tls_ca = {svc['tls_ca']}")
    if not svc.get("tls_verify", True):
        lines.append(f"{INDENT}tls_verify = none")
    for server in svc["servers"]:
        line = f"{INDENT}server = {_address(server, numeric)} {server['weight']}"
        if server.get("tls"):
            line += " tls" + (f" {server['tls_name']}" if server.get("tls_name") else "")
        if server.get("own_check"):
            line += f" check {server['own_check']}"
        lines.append(line + (_server_stats(server) if stats else ""))
    hhttp = svc["scheduler"].lower() == "hhttp"
    for rule in svc["rules"]:
        # KTCPVS printed `match N` for hhttp only; a non-zero match is kept for any scheduler
        # so that the listing loads back into the same table.
        match = f"match {rule['match']} " if hhttp or rule["match"] else ""
        for server in rule["servers"]:
            lines.append(
                f'{INDENT}rule = pattern "{rule["pattern"]}" {match}'
                f"use server {_address(server, numeric)}"
            )
    for sni in svc.get("sni_rules", ()):
        for server in sni["servers"]:
            lines.append(
                f'{INDENT}rule = sni "{sni["pattern"]}" use server {_address(server, numeric)}'
            )
    lines.append("}")
    return lines


def render_config(
    snap: dict[str, Any], numeric: bool = True, header: bool = True, stats: bool = False
) -> str:
    """The `tcpvsadm -L` text: the version header (when listing all) and one block per service.

    Fed back to `parse_config` it rebuilds the same table (`--stats` adds only comments).
    """
    lines = [f"TCP Virtual Server version {snap['version']}"] if header else []
    for svc in snap["services"]:
        lines.extend(render_service(svc, numeric, stats))
    return "".join(line + "\n" for line in lines)
