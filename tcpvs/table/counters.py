"""What the engine counts besides connections and bytes: responses by status class, the causes
of requests that ended badly, and latency histograms. Plain data; the exchanges update it,
snapshots (tcpvs.table.listing) read it, the admin address exposes it (tcpvs.admin.metrics).
"""

from __future__ import annotations

from typing import Any

# Upper bounds (seconds) of the latency histogram buckets, plus one for anything slower:
# Prometheus's defaults shifted down a decade, since a switch answers in milliseconds.
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# Why a request (or raw connection) ended badly; index 0 is a normal end. The names are the
# access log's termination cause and the `cause` label of tcpvs_service_errors_total.
CAUSES = (
    "-",
    "bad_request",  # malformed or ambiguous request: 4xx, never sent to a server
    "client_timeout",  # the client was too slow sending its request: 408
    "client_gone",  # the client closed or reset before the answer was complete
    "maxclients",  # over the service's maxclients: 503
    "no_server",  # no rule matched or no server may take it: 503
    "refused",  # every server tried refused or did not accept in time: 502
    "server_closed",  # the server closed or reset before its answer was complete: 502 / cut
    "bad_response",  # the server's answer was malformed: 502 / cut
    "server_timeout",  # the server did not answer (504) or stalled its answer (cut)
    "tunnel_timeout",  # an upgraded or raw TCP connection idle past read_timeout
)
(
    OK,
    BAD_REQUEST,
    CLIENT_TIMEOUT,
    CLIENT_GONE,
    MAXCLIENTS,
    NO_SERVER,
    REFUSED,
    SERVER_CLOSED,
    BAD_RESPONSE,
    SERVER_TIMEOUT,
    TUNNEL_TIMEOUT,
) = range(len(CAUSES))


class Histogram:
    """Observations counted per bucket of LATENCY_BOUNDS (not cumulative) and their sum.

    Observed by the compiled exchanges only (tcpvs.exchange.base.observe), as a C call."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.total = 0.0

    def add(self, other: Histogram) -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total

    def as_dict(self) -> dict[str, Any]:
        return {"buckets": list(self.counts), "sum": self.total}


def by_status_class(counts: list[int]) -> dict[str, int]:
    return dict(zip(STATUS_CLASSES, counts, strict=True))


def by_cause(counts: list[int]) -> dict[str, int]:
    """The bad endings by cause (the normal one left out)."""
    return dict(zip(CAUSES[1:], counts[1:], strict=True))


def add_counts(into: list[int], other: list[int]) -> None:
    for i, n in enumerate(other):
        into[i] += n
