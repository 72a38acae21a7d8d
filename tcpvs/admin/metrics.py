"""The Prometheus exposition of a table snapshot (GET /metrics on the admin address).

The counters are the engine's own (tcpvs.table.counters, summed over workers by the master as
for `-L --stats`); prometheus_client's metric families and text writer turn them into the
exposition format, next to its default process, platform and GC collectors. Labels are bounded:
the service ident, the server address, a status class or a failure cause; never a URI or a
client address.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from tcpvs.table.counters import LATENCY_BOUNDS

# The classic text format every Prometheus and scraper reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
SERVICE = ["service"]
SERVER = ["service", "server"]

# (metric name, help, snapshot key) of the plain counters and gauges.
SERVICE_COUNTERS = (
    ("tcpvs_service_connections", "Client connections accepted.", "total_conns"),
    ("tcpvs_service_requests", "HTTP requests received.", "requests"),
    ("tcpvs_service_received_bytes", "Bytes received from clients.", "bytes_in"),
    ("tcpvs_service_sent_bytes", "Bytes sent to clients.", "bytes_out"),
    ("tcpvs_service_error_responses", "Error answers made by the switch itself.", "errors"),
    ("tcpvs_service_retries", "Requests sent again after a server failed them.", "retries"),
    (
        "tcpvs_service_retries_denied",
        "Retries the retry budget refused (the client got the error).",
        "retries_denied",
    ),
)
SERVER_COUNTERS = (
    ("tcpvs_server_connections", "Connections opened to the server.", "total_conns"),
    ("tcpvs_server_requests", "Requests sent to the server.", "requests"),
    ("tcpvs_server_sent_bytes", "Bytes sent to the server.", "bytes_in"),
    ("tcpvs_server_received_bytes", "Bytes received from the server.", "bytes_out"),
    ("tcpvs_server_connect_failures", "Connections to the server that failed.", "failures"),
    ("tcpvs_server_retries", "Requests sent again after this server failed them.", "retries"),
)
HISTOGRAMS = (
    (
        "tcpvs_server_first_byte_seconds",
        "From a request's complete head to its answer's head (connecting included).",
        "first_byte",
    ),
    (
        "tcpvs_server_request_duration_seconds",
        "From a request's first byte to its answer's last (raw TCP: the connection's life).",
        "duration",
    ),
)
_LE = [repr(bound) for bound in LATENCY_BOUNDS] + ["+Inf"]


def _server(server: dict[str, Any]) -> str:
    host = server["host"]
    return f"[{host}]:{server['port']}" if ":" in host else f"{host}:{server['port']}"


class SnapshotCollector(Collector):
    """The metric families of one snapshot (it is taken before the registry collects)."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        services = self.snap["services"]
        yield from self._service_metrics(services)
        yield from self._server_metrics(services)
        reloads = CounterMetricFamily(
            "tcpvs_config_loads",
            "Config files loaded (-f, SIGHUP), by result.",
            labels=["result"],
        )
        for result, count in self.snap.get("reloads", {}).items():
            reloads.add_metric([result], count)
        yield reloads
        workers = self.snap.get("workers")
        yield GaugeMetricFamily(
            "tcpvs_workers", "Worker processes serving.", len(workers) if workers else 1
        )

    def _service_metrics(self, services: list[dict[str, Any]]) -> Iterator[Metric]:
        running = GaugeMetricFamily("tcpvs_service_up", "1 if the service runs.", labels=SERVICE)
        active = GaugeMetricFamily(
            "tcpvs_service_active_connections", "Client connections open now.", labels=SERVICE
        )
        for svc in services:
            running.add_metric([svc["ident"]], 1 if svc["running"] else 0)
            active.add_metric([svc["ident"]], svc["stats"]["conns"])
        yield running
        yield active
        for name, doc, key in SERVICE_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=SERVICE)
            for svc in services:
                family.add_metric([svc["ident"]], svc["stats"][key])
            yield family
        responses = CounterMetricFamily(
            "tcpvs_service_responses",
            "Answers sent to clients (the servers' and the switch's), by status class.",
            labels=[*SERVICE, "code"],
        )
        errors = CounterMetricFamily(
            "tcpvs_service_errors",
            "Requests (raw TCP: connections) that ended badly, by cause.",
            labels=[*SERVICE, "cause"],
        )
        for svc in services:
            for code, count in svc["stats"]["responses"].items():
                responses.add_metric([svc["ident"], code], count)
            for cause, count in svc["stats"]["causes"].items():
                errors.add_metric([svc["ident"], cause], count)
        yield responses
        yield errors

    def _server_metrics(self, services: list[dict[str, Any]]) -> Iterator[Metric]:
        pairs = [(svc["ident"], server) for svc in services for server in svc["servers"]]
        weight = GaugeMetricFamily("tcpvs_server_weight", "The server's weight.", labels=SERVER)
        active = GaugeMetricFamily(
            "tcpvs_server_active", "Connections or requests the server has now.", labels=SERVER
        )
        for ident, server in pairs:
            weight.add_metric([ident, _server(server)], server["weight"])
            active.add_metric([ident, _server(server)], server["stats"]["conns"])
        yield weight
        yield active
        yield from _state_families(pairs)
        for name, doc, key in SERVER_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=SERVER)
            for ident, server in pairs:
                family.add_metric([ident, _server(server)], server["stats"][key])
            yield family
        responses = CounterMetricFamily(
            "tcpvs_server_responses",
            "The server's answers relayed to clients, by status class.",
            labels=[*SERVER, "code"],
        )
        for ident, server in pairs:
            for code, count in server["stats"]["responses"].items():
                responses.add_metric([ident, _server(server), code], count)
        yield responses
        for name, doc, key in HISTOGRAMS:
            histogram = HistogramMetricFamily(name, doc, labels=SERVER)
            for ident, server in pairs:
                data = server["stats"][key]
                cumulative = list(accumulate(data["buckets"]))
                histogram.add_metric(
                    [ident, _server(server)], list(zip(_LE, cumulative, strict=True)), data["sum"]
                )
            yield histogram


STATES = ("up", "down", "drain", "maint")


def _state_families(pairs: list[tuple[str, dict[str, Any]]]) -> Iterator[Metric]:
    """Each server's state (one series per possible state, 1 for the current one) and its
    health checks by result."""
    state = GaugeMetricFamily(
        "tcpvs_server_state",
        "1 for the server's state: up, down, drain or maint.",
        labels=[*SERVER, "state"],
    )
    checks = CounterMetricFamily(
        "tcpvs_server_checks", "Health checks of the server, by result.", labels=[*SERVER, "result"]
    )
    for ident, server in pairs:
        name = _server(server)
        for one in STATES:
            state.add_metric([ident, name, one], 1 if server.get("state", "up") == one else 0)
        for result, count in (server.get("checks") or {}).items():
            checks.add_metric([ident, name, result], count)
    yield state
    yield checks


def exposition(snap: dict[str, Any]) -> bytes:
    """The text a Prometheus scrape gets for `snap`, with this process's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return generate_latest(registry)
