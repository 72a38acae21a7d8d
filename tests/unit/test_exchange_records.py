"""What the exchanges count and log as each request ends, event by event without sockets:
responses by status class, the cause of every bad ending, retries, the latency histograms, and
one access-log record per request (raw TCP: per connection) with its timers."""

from __future__ import annotations

from typing import Any

import pytest

from tcpvs.exchange.base import Site
from tcpvs.exchange.tcp import TcpExchange
from tcpvs.http import error_response
from tcpvs.table.counters import CAUSES, LATENCY_BOUNDS
from tests.unit.exchange_port import Harness, service

GET = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SERVERS = "    server = 127.0.0.1:9001 1\n    server = 127.0.0.1:9002 1"
TICK = 0.004  # each reading of the test clock is this much later than the one before


class ClockedSite(Site):
    """A site whose clock moves TICK on each reading."""

    def __init__(self, svc) -> None:
        super().__init__(svc)
        self.ticks = 1000.0

    def clock(self) -> float:
        self.ticks += TICK
        return self.ticks


class Records:
    """An access log that keeps what it is given."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def request(self, exchange, server, begin, end, status, cause) -> None:
        self.entries.append(
            {
                "server": None if server is None else str(server.address),
                "status": status,
                "cause": CAUSES[cause],
                "tq": exchange.t_ready - begin if exchange.t_ready else None,
                "tt": end - begin,
                "retries": exchange.retries,
                "req_bytes": exchange.req_bytes,
                "resp_bytes": exchange.port.transferred()[1] - exchange.out_mark,
            }
        )


def logged(lab: Harness) -> Records:
    site = ClockedSite(lab.site.service)
    site.now = lab.site.now
    lab.site = lab.exchange.site = site
    records = Records()
    lab.site.access = records
    return records


def started(body: str = SERVERS) -> tuple[Harness, Records]:
    lab = Harness(service(body))
    records = logged(lab)
    lab.exchange.start()
    return lab, records


def classes(counts: list[int]) -> dict[str, int]:
    return {f"{i + 1}xx": n for i, n in enumerate(counts) if n}


def test_a_served_request_counts_its_class_latencies_and_is_logged_once_with_its_timers():
    lab, records = started()
    lab.exchange.client_data(GET)  # clock: begin, head complete, server ready
    lab.exchange.server_data(OK)  # clock: answer's head, end
    server = lab.service.servers[0]
    assert classes(server.responses) == {"2xx": 1} == classes(lab.service.stats.responses)
    assert server.first_byte.counts == [0, 0, 0, 0, 1] + [0] * (len(LATENCY_BOUNDS) - 4)  # <=10ms
    assert server.first_byte.total == pytest.approx(2 * TICK)  # head -> ready -> answer
    assert server.duration.total == pytest.approx(4 * TICK)
    assert records.entries == [
        {
            "server": "127.0.0.1:9001",
            "status": 200,
            "cause": "-",
            "tq": pytest.approx(TICK),
            "tt": pytest.approx(4 * TICK),
            "retries": 0,
            "req_bytes": len(GET),
            "resp_bytes": len(OK),
        }
    ]
    assert not any(lab.service.stats.causes)


def test_every_request_of_a_keepalive_connection_is_logged_once_pipelined_ones_too():
    lab, records = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(OK)
    lab.exchange.client_data(GET + GET)
    lab.exchange.server_data(OK)
    lab.exchange.server_data(OK)
    lab.exchange.client_ended()
    assert [e["status"] for e in records.entries] == [200, 200, 200]
    assert [e["resp_bytes"] for e in records.entries] == [len(OK)] * 3
    assert lab.service.stats.responses[1] == 3 == lab.service.stats.requests


def _refuse_both(lab: Harness) -> None:
    lab.port.pooled = False
    lab.exchange.client_data(GET)
    first, second = lab.service.servers
    lab.exchange.server_failed(first)
    lab.exchange.server_failed(second)


def _stale_post(lab: Harness) -> None:
    lab.exchange.client_data(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    lab.exchange.server_ended()


def _timeout(seconds: float, *steps: bytes):
    def run(lab: Harness) -> None:
        for n, data in enumerate(steps):
            (lab.exchange.client_data if n == 0 else lab.exchange.server_data)(data)
        assert lab.expire(seconds)

    return run


CASES = {
    "bad-request": (lambda lab: lab.exchange.client_data(b"GET / HTTP/1.1\r\n bad\r\n\r\n"), 400),
    "refused": (_refuse_both, 502),
    "no-rule": (
        lambda lab: lab.exchange.client_data(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
        503,
    ),
    "server-closed": (_stale_post, 502),
    "bad-response": (
        lambda lab: (lab.exchange.client_data(GET), lab.exchange.server_data(b"HTTP/9 x\r\n\r\n")),
        502,
    ),
    "server-timeout": (_timeout(60, GET), 504),
    "client-timeout": (_timeout(10, b"GET / HTTP/1.1\r\n"), 408),
    "client-gone-mid-body": (
        lambda lab: (
            lab.exchange.client_data(b"PUT /a HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc"),
            lab.exchange.client_ended(),
        ),
        400,
    ),
}
CAUSE_OF = {
    "bad-request": "bad_request",
    "refused": "refused",
    "no-rule": "no_server",
    "server-closed": "server_closed",
    "bad-response": "bad_response",
    "server-timeout": "server_timeout",
    "client-timeout": "client_timeout",
    "client-gone-mid-body": "client_gone",
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_error_answer_is_counted_by_its_cause_and_logged_once(case):
    run, status = CASES[case]
    body = (
        SERVERS + '\n    rule = pattern "^/a" use server 127.0.0.1:9001'
        if case == "no-rule"
        else SERVERS
    )
    if case == "refused":
        body = SERVERS
    lab, records = started(body)
    run(lab)
    assert lab.port.sent_to_client().startswith(error_response(status))
    assert [(e["status"], e["cause"]) for e in records.entries] == [(status, CAUSE_OF[case])]
    stats = lab.service.stats
    assert stats.causes[CAUSES.index(CAUSE_OF[case])] == 1 and sum(stats.causes) == 1
    assert classes(stats.responses) == {f"{status // 100}xx": 1}
    assert not any(s.responses[status // 100 - 1] for s in lab.service.servers)  # not theirs


def test_an_answer_cut_short_counts_as_the_servers_answer_with_the_cause():
    lab, records = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    lab.exchange.server_ended()
    assert [(e["status"], e["cause"], e["server"]) for e in records.entries] == [
        (200, "server_closed", "127.0.0.1:9001")
    ]
    assert classes(lab.service.servers[0].responses) == {"2xx": 1}


def test_a_client_gone_mid_answer_and_one_gone_between_requests():
    lab, records = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(OK)
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    lab.exchange.lost()
    lab.exchange.lost()  # (a second report of the same loss records nothing more)
    assert [(e["status"], e["cause"]) for e in records.entries] == [
        (200, "-"),
        (200, "client_gone"),
    ]
    lab2, records2 = started()
    lab2.exchange.client_data(GET)
    lab2.exchange.server_data(OK)
    lab2.exchange.lost()  # idle: no request was in hand
    assert [e["cause"] for e in records2.entries] == ["-"]


def test_a_retry_on_the_next_server_is_counted_on_the_one_that_failed():
    lab, records = started()
    lab.port.pooled = False
    lab.exchange.client_data(GET)
    first, second = lab.service.servers
    lab.exchange.server_failed(first)
    lab.exchange.server_ready(False)
    lab.exchange.server_data(OK)
    assert (first.retries, second.retries, lab.service.stats.retries) == (1, 0, 1)
    assert [(e["server"], e["retries"], e["status"]) for e in records.entries] == [
        ("127.0.0.1:9002", 1, 200)
    ]


def test_a_stale_pooled_connection_resent_counts_one_retry():
    lab, records = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_ended()  # stale: GET is sent again on a fresh connection
    lab.exchange.server_ready(False)
    lab.exchange.server_data(OK)
    assert lab.service.servers[0].retries == 1
    assert [(e["retries"], e["status"]) for e in records.entries] == [(1, 200)]


def test_over_maxclients_is_counted_and_logged():
    lab = Harness(service(SERVERS))
    records = logged(lab)
    lab.exchange.refuse()
    assert [(e["status"], e["cause"]) for e in records.entries] == [(503, "maxclients")]
    assert lab.service.stats.causes[CAUSES.index("maxclients")] == 1


def test_a_raw_tcp_connection_is_one_record_with_its_server_and_duration():
    lab = Harness(service(SERVERS, "wlc"), kind=TcpExchange)
    records = logged(lab)
    lab.exchange.start()
    lab.exchange.server_ready(False)
    lab.exchange.tunnel_ended()
    server = lab.service.servers[0]
    assert [(e["server"], e["status"], e["cause"]) for e in records.entries] == [
        ("127.0.0.1:9001", 0, "-")
    ]
    assert sum(server.duration.counts) == 1 and not any(server.responses)


def test_a_raw_tcp_connection_with_no_server_is_counted_by_cause():
    lab = Harness(service(SERVERS, "wlc"), kind=TcpExchange)
    records = logged(lab)
    lab.port.pooled = False
    lab.exchange.start()
    first, second = lab.service.servers
    lab.exchange.server_failed(first)
    lab.exchange.server_failed(second)
    assert [(e["cause"], e["retries"]) for e in records.entries] == [("refused", 1)]


class WatchedSite(ClockedSite):
    """A site that keeps what the exchange reports as outliers."""

    def __init__(self, svc) -> None:
        super().__init__(svc)
        self.outliers: list[tuple[str, str]] = []

    def outlier(self, server, reason: str) -> None:
        self.outliers.append((str(server.address), reason))


def watched(settings: str) -> tuple[Harness, WatchedSite]:
    lab = Harness(service(SERVERS + "\n" + settings))
    site = WatchedSite(lab.site.service)
    site.now = lab.site.now
    lab.site = lab.exchange.site = site
    lab.exchange.start()
    return lab, site


def test_answers_5xx_in_a_row_report_the_server_and_any_other_answer_starts_over():
    lab, site = watched("    eject_5xx = 3")
    error = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    for answer in (error, error, OK, error, error):
        lab.exchange.client_data(GET)
        lab.exchange.server_data(answer)
    assert site.outliers == []
    lab.exchange.client_data(GET)
    lab.exchange.server_data(error)
    assert site.outliers == [("127.0.0.1:9001", "3 answers 5xx in a row")]
    assert lab.service.servers[0].error_streak == 0  # counted anew from here


def test_failed_connections_in_a_row_report_the_server_only_when_asked():
    lab, site = watched("    eject_failures = 2")
    lab.port.pooled = False
    first = lab.service.servers[0]
    for _ in range(2):
        lab.exchange.client_data(GET)
        lab.exchange.server_failed(first)
        lab.exchange.server_ready(False)
        lab.exchange.server_data(OK)
    assert site.outliers == [("127.0.0.1:9001", "2 failed connections in a row")]
    quiet, quiet_site = watched("")
    quiet.port.pooled = False
    for _ in range(3):
        quiet.exchange.client_data(GET)
        quiet.exchange.server_failed(quiet.service.servers[0])
        quiet.exchange.server_ready(False)
        quiet.exchange.server_data(OK)
    assert quiet_site.outliers == []
