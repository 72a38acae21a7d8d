"""Snapshots of the table as plain data (for the control socket, --json and -L). No I/O."""

from __future__ import annotations

from typing import Any

from tcpvs._version import __version__
from tcpvs.model import SETTINGS, RealServer, Service
from tcpvs.table import Table


def _server(server: RealServer) -> dict[str, Any]:
    return {
        "host": server.address.host,
        "port": server.address.port,
        "weight": server.weight,
        "stats": server.stats(),
    }


def service_snapshot(service: Service) -> dict[str, Any]:
    stats = service.stats
    return {
        "ident": service.ident,
        "listen": {"host": service.listen.host, "port": service.listen.port},
        "scheduler": service.scheduler_name,
        "running": service.running,
        "settings": {s.name: service.settings[s.name] for s in SETTINGS},
        "redirect": (
            None
            if service.redirect is None
            else {"host": service.redirect.host, "port": service.redirect.port}
        ),
        "servers": [_server(s) for s in service.servers],
        "rules": [
            {
                "pattern": rule.pattern,
                "match": rule.match,
                "servers": [{"host": s.address.host, "port": s.address.port} for s in rule.servers],
            }
            for rule in service.rules
        ],
        "stats": {
            "conns": stats.conns,
            "total_conns": stats.total_conns,
            "requests": stats.requests,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "errors": stats.errors,
        },
    }


def snapshot(table: Table, ident: str | None = None) -> dict[str, Any]:
    """The whole table (or one service, TableError if unknown) as JSON-ready data."""
    services = [table.service(ident)] if ident is not None else list(table.services.values())
    return {"version": __version__, "services": [service_snapshot(s) for s in services]}
