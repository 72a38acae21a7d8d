"""The HTTP/1.x exchange, event by event, without sockets: what it sends where, which server it
opens, when it holds the client, what each timeout answers, and that every state change it
makes is one its transition table lists."""

from __future__ import annotations

import pytest

from tcpvs.exchange import http1
from tcpvs.exchange.base import MAX_PENDING
from tcpvs.http import error_response
from tests.unit.exchange_port import Harness, Ledger, service

GET = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TE_CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"
SERVERS = "    server = 127.0.0.1:9001 1\n    server = 127.0.0.1:9002 1"
RULES = (
    SERVERS
    + '\n    rule = pattern "^/img/" use server 127.0.0.1:9001'
    + '\n    rule = pattern ".*" use server 127.0.0.1:9002'
)


@pytest.fixture(autouse=True)
def transitions():
    """Every transition any exchange makes in these tests must be in TRANSITIONS."""
    seen: list[tuple[int, int]] = []
    http1.trace(lambda a, b: seen.append((a, b)))
    yield seen
    http1.trace(None)
    wrong = [(http1.NAMES[a], http1.NAMES[b]) for a, b in seen if b not in http1.TRANSITIONS[a]]
    assert not wrong, f"transitions not in the table: {wrong}"


def started(body: str = SERVERS, scheduler: str = "http") -> Harness:
    lab = Harness(service(body, scheduler))
    lab.exchange.start()
    return lab


def served(lab: Harness, request: bytes = GET, response: bytes = OK) -> None:
    lab.exchange.client_data(request)
    lab.exchange.server_data(response)


def test_a_request_goes_to_its_rules_server_with_x_forwarded_for_and_back():
    lab = started(RULES)
    lab.exchange.client_data(b"GET /img/1 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert lab.port.take() == [
        ("open", ("127.0.0.1:9001", False)),
        ("server", b"GET /img/1 HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"),
    ]
    assert lab.state() == "WAITING"
    lab.exchange.server_data(OK)
    assert lab.port.take() == [("client", OK), ("release", None)]
    assert lab.state() == "IDLE"
    server = lab.service.servers[0]
    assert (server.conns, server.requests, lab.service.stats.requests) == (0, 1, 1)


def test_every_request_of_a_keepalive_connection_is_routed_by_its_own_uri():
    lab = started(RULES)
    opened = []
    for path in (b"/img/1", b"/x", b"/img/2"):
        served(lab, b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
        opened += [arg[0] for name, arg in lab.port.take() if name == "open"]
    assert opened == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9001"]


def test_pipelined_requests_wait_their_turn_in_order():
    lab = started(RULES)
    lab.exchange.client_data(
        b"GET /img/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    assert [name for name, _ in lab.port.take()] == ["open", "server"]  # only the first
    lab.exchange.server_data(OK)
    assert lab.port.take() == [
        ("client", OK),
        ("release", None),
        ("open", ("127.0.0.1:9002", False)),
        ("server", b"GET /x HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"),
    ]


def test_a_client_pipelining_too_far_ahead_is_held_until_its_turn():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.client_data(GET * (MAX_PENDING // len(GET) + 1))
    assert ("hold", True) in lab.port.take()
    lab.exchange.server_data(OK)
    assert ("hold", False) in lab.port.take()


def test_a_body_in_pieces_streams_to_the_server():
    lab = started()
    lab.exchange.client_data(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123")
    assert lab.port.take()[-1] == (
        "server",
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nX-Forwarded-For: 192.0.2.7"
        b"\r\n\r\n0123",
    )
    assert lab.state() == "SENDING"
    lab.exchange.client_data(b"456789")
    assert lab.port.take() == [("server", b"456789")]
    assert lab.state() == "WAITING"


def test_a_body_arriving_while_connecting_is_kept_then_sent_and_the_client_let_go():
    lab = started()
    lab.port.pooled = False
    head = b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (MAX_PENDING + 1010)
    lab.exchange.client_data(head + b"x" * 1000)
    lab.exchange.client_data(b"x" * MAX_PENDING)
    assert lab.port.take()[-1] == ("hold", True)
    assert lab.state() == "CONNECTING"
    lab.exchange.server_ready(False)
    sent, released = lab.port.take()
    assert sent[0] == "server" and sent[1].endswith(b"x" * (MAX_PENDING + 1000))
    assert released == ("hold", False)  # the upload that hung: the client reads again
    lab.exchange.client_data(b"x" * 10)
    assert lab.port.take() == [("server", b"x" * 10)]
    assert lab.state() == "WAITING"


def test_a_chunked_body_is_validated_before_a_server_is_chosen():
    lab = started()
    lab.exchange.client_data(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert lab.state() == "BUFFERING" and lab.port.take() == []
    lab.exchange.client_data(b"5\r\nhello\r\nZZ\r\n")  # not a chunk size
    assert lab.port.take() == [
        ("client", error_response(400)),
        ("drop", None),
        ("close", None),
    ]


def test_a_complete_chunked_body_is_sent_whole():
    lab = started()
    body = b"5\r\nhello\r\n0\r\n\r\n"
    lab.exchange.client_data(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )
    (_, _), (_, sent) = lab.port.take()
    assert sent.endswith(b"\r\n\r\n" + body) and lab.state() == "WAITING"


def test_expect_100_continue_goes_out_at_once_and_the_100_comes_back():
    lab = started()
    lab.exchange.client_data(
        b"PUT /u HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert lab.state() == "SENDING"
    lab.port.take()
    lab.exchange.server_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert lab.port.take() == [("client", b"HTTP/1.1 100 Continue\r\n\r\n")]
    lab.exchange.client_data(b"abc")
    assert lab.port.take() == [("server", b"abc")]


def test_101_turns_the_connection_into_a_tunnel_with_what_the_client_sent_after():
    lab = started()
    lab.exchange.client_data(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly"
    )
    lab.port.take()
    lab.exchange.server_data(b"HTTP/1.1 101 Switching\r\nUpgrade: echo\r\n\r\nhi")
    assert lab.port.take() == [
        ("client", b"HTTP/1.1 101 Switching\r\nUpgrade: echo\r\n\r\nhi"),
        ("server", b"early"),
        ("tunnel", None),
    ]
    assert lab.state() == "TUNNEL"
    lab.exchange.tunnel_ended()
    assert lab.port.take() == [("drop", None), ("close", None)]
    assert lab.service.servers[0].conns == 0


ONE_SERVER = "    server = 127.0.0.1:9001 1"


@pytest.mark.parametrize(
    ("method", "replayed"), [(b"GET", True), (b"DELETE", True), (b"POST", False)]
)
def test_only_a_safe_request_is_sent_again_when_a_pooled_connection_was_stale(method, replayed):
    lab = started()
    length = b"Content-Length: 0\r\n" if method == b"POST" else b""
    lab.exchange.client_data(method + b" /p HTTP/1.1\r\nHost: t\r\n" + length + b"\r\n")
    lab.port.take()
    lab.exchange.server_ended()
    first, second = lab.service.servers
    if replayed:  # on the other server (pooled), the stale one not rested: it did not fail
        assert lab.port.take() == [
            ("drop", None),
            ("open", ("127.0.0.1:9002", False)),
            ("server", method + b" /p HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"),
        ]
        lab.exchange.server_data(OK)
        assert ("client", OK) in lab.port.take()
        assert (first.retries, lab.service.stats.retries, first.failures) == (1, 1, 0)
    else:
        assert lab.port.take() == [
            ("client", error_response(502)),
            ("drop", None),
            ("close", None),
        ]
    assert first.conns == second.conns == 0


def test_a_stale_pooled_connection_to_the_only_server_is_replaced_by_a_fresh_one():
    lab = started(ONE_SERVER)
    lab.exchange.client_data(GET)
    lab.port.take()
    lab.exchange.server_ended()
    assert lab.port.take() == [("drop", None), ("open", ("127.0.0.1:9001", True))]
    lab.exchange.server_ready(False)
    lab.exchange.server_data(OK)
    assert ("client", OK) in lab.port.take()


@pytest.mark.parametrize(("method", "replayed"), [(b"GET", True), (b"POST", False)])
def test_a_fresh_connection_closed_before_any_answer_sends_a_safe_request_elsewhere(
    method, replayed
):
    lab = started()
    lab.port.pooled = False
    length = b"Content-Length: 0\r\n" if method == b"POST" else b""
    lab.exchange.client_data(method + b" /p HTTP/1.1\r\nHost: t\r\n" + length + b"\r\n")
    lab.exchange.server_ready(False)
    lab.port.take()
    lab.exchange.server_ended()
    first = lab.service.servers[0]
    if replayed:  # to the other server
        assert lab.port.take() == [("drop", None), ("open", ("127.0.0.1:9002", False))]
        assert first.retries == 1
    else:
        assert lab.port.take()[0] == ("client", error_response(502))
        assert lab.service.stats.retries == 0


def test_a_fresh_connection_to_the_only_server_closed_before_any_answer_is_502():
    lab = started(ONE_SERVER)
    lab.port.pooled = False
    lab.exchange.client_data(GET)
    lab.exchange.server_ready(False)
    lab.port.take()
    lab.exchange.server_ended()
    assert lab.port.take()[0] == ("client", error_response(502))


THREE_SERVERS = SERVERS + "\n    server = 127.0.0.1:9003 1\n    server = 127.0.0.1:9004 1"


@pytest.mark.parametrize(("retries", "opened"), [(2, 3), (1, 2), (0, 1)])
def test_a_request_is_tried_on_at_most_retries_plus_one_servers_each_different(retries, opened):
    lab = started(THREE_SERVERS + f"\n    retries = {retries}")
    lab.port.pooled = False
    lab.exchange.client_data(GET)
    for server in lab.service.servers[:opened]:
        lab.exchange.server_failed(server)
    actions = lab.port.take()
    tried = [arg[0] for name, arg in actions if name == "open"]
    assert tried == [f"127.0.0.1:900{i}" for i in range(1, opened + 1)]
    assert actions[-3] == ("client", error_response(502))
    assert lab.service.stats.retries == retries == len(tried) - 1


def test_the_retry_budget_caps_retries_at_a_share_of_requests_after_a_burst():
    svc = service(THREE_SERVERS)
    granted = 0
    for _ in range(200):  # every server refuses every request: a full outage
        lab = Harness(svc)
        lab.port.pooled = False
        lab.exchange.start()
        lab.exchange.client_data(GET)
        for server in svc.servers:
            if lab.exchange.state == http1.CLOSED:
                break
            lab.exchange.server_failed(server)
            server.down_until = 0.0  # (keep every server a candidate: only the budget says no)
        granted += lab.exchange.retries
        assert lab.port.sent_to_client().startswith(b"HTTP/1.1 502")
    assert svc.stats.requests == 200
    # Without a budget: 2 retries for each of the 200. With it: the burst, then 20 %.
    assert granted == svc.stats.retries
    assert 10 + 200 * 0.2 - 2 <= granted <= 10 + 200 * 0.2
    assert svc.budget.denied >= 200 - granted // 2


def test_a_refused_server_rests_and_the_next_one_is_tried_then_502():
    lab = started()
    lab.port.pooled = False
    lab.exchange.client_data(GET)
    first, second = lab.service.servers
    assert lab.port.take() == [("open", ("127.0.0.1:9001", False))]
    lab.exchange.server_failed(first)
    assert lab.port.take() == [("open", ("127.0.0.1:9002", False))]
    assert first.down_until > lab.site.now and first.failures == 1
    lab.exchange.server_failed(second)
    assert lab.port.take()[0] == ("client", error_response(502))


def test_no_rule_matching_is_503_or_the_redirect_server():
    lab = started(SERVERS + '\n    rule = pattern "^/only/" use server 127.0.0.1:9001')
    lab.exchange.client_data(GET)
    assert lab.port.take()[0] == ("client", error_response(503))


def test_a_truncated_answer_cuts_the_client():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert lab.port.take()[-1] == ("pass", 7)  # the rest passes along unseen
    lab.exchange.server_ended()
    assert lab.port.take() == [("drop", None), ("abort", None)]


def test_a_body_passed_along_ends_the_response_and_extra_bytes_spoil_the_connection():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    assert lab.port.take()[-1] == ("pass", 1000000)
    lab.exchange.passed(b"junk")  # the server sent more than it announced
    assert lab.port.take() == [("drop", None)]
    assert lab.state() == "IDLE"


def test_a_close_delimited_answer_passes_to_its_end_then_closes():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert lab.port.take()[-2:] == [("client", b"HTTP/1.1 200 OK\r\n\r\nsome"), ("pass", -1)]
    lab.exchange.passed(b"")
    assert lab.port.take() == [("drop", None), ("close", None)]


def test_a_chunked_answer_is_followed_to_its_last_chunk():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
    assert lab.state() == "RESPONDING"
    lab.exchange.server_data(b"0\r\n\r\n")
    assert lab.port.take()[-2:] == [("client", b"0\r\n\r\n"), ("release", None)]


def test_a_client_that_stops_sending_its_body_gets_400_at_its_half_close():
    lab = started()
    lab.exchange.client_data(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12")
    lab.port.take()
    lab.exchange.client_ended()
    assert lab.port.take()[0] == ("client", error_response(400))


def test_over_maxclients_the_client_gets_503():
    lab = Harness(service(SERVERS))
    lab.exchange.refuse()
    assert lab.port.take() == [("client", error_response(503)), ("close", None)]


@pytest.mark.parametrize(
    ("steps", "seconds", "outcome"),
    [
        ([], 10, [("drop", None), ("close", None)]),  # nothing sent: closed quietly
        ([b"GET / HTTP/1.1\r\n"], 10, [("client", error_response(408))]),  # a slow head
        ([GET], 60, [("client", error_response(504))]),  # a slow server
        ([GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"], 60, [("drop", None)]),
    ],
    ids=["idle-first", "slow-head", "slow-server", "stalled-answer"],
)
def test_each_state_has_its_own_timeout(steps, seconds, outcome):
    lab = started()
    for n, data in enumerate(steps):
        (lab.exchange.client_data if n == 0 else lab.exchange.server_data)(data)
    lab.port.take()
    assert not lab.expire(seconds - 0.5)
    assert lab.expire(0.5)
    assert lab.port.take()[: len(outcome)] == outcome


def test_the_head_timeout_counts_from_its_first_byte_not_its_last():
    lab = started()
    for _ in range(9):
        lab.exchange.client_data(b"G")  # a byte a second, as slowloris sends
        assert not lab.expire(1)
    lab.exchange.client_data(b"E")
    assert lab.expire(1)
    assert lab.port.take()[0] == ("client", error_response(408))


def test_a_stream_of_answer_bytes_keeps_the_server_timeout_from_running_out():
    lab = started()
    lab.exchange.client_data(GET)
    lab.exchange.server_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(10):
        assert not lab.expire(50)
        lab.exchange.server_data(b"1\r\nx\r\n")
    assert lab.state() == "RESPONDING"


def test_stopping_closes_idle_connections_and_busy_ones_after_their_answer():
    lab = started()
    served(lab)
    lab.port.take()
    lab.exchange.shutdown()
    assert lab.port.take() == [("drop", None), ("close", None)]
    busy = started()
    busy.exchange.client_data(GET)
    busy.exchange.shutdown()
    busy.port.take()
    busy.exchange.server_data(OK)
    assert busy.port.take()[-1] == ("close", None)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n" + TE_CHUNKED, 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),  # space before the colon
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: t\n\n", 400),  # bare LF
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS ClientHello
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n", 431),
    ],
    ids=[
        "cl-and-te", "two-lengths", "obs-fold", "space-colon", "chunked-not-last", "bare-lf",
        "no-host", "tls", "version", "identity", "too-large",
    ],
)  # fmt: skip
def test_hostile_requests_are_answered_and_never_reach_a_server(request_bytes, status):
    lab = started()
    lab.exchange.client_data(request_bytes)
    actions = lab.port.take()
    assert actions[0] == ("client", error_response(status))
    assert not any(name in ("open", "server") for name, _ in actions)
    assert lab.service.stats.errors == 1


def test_every_server_taken_is_given_back_exactly_once_and_the_scheduler_hears_both():
    Ledger.log.clear()
    lab = started(SERVERS, scheduler="ledger")
    served(lab)  # answered
    lab.exchange.client_data(GET)
    lab.exchange.server_ended()  # stale: sent to the other server (pooled too)
    lab.exchange.server_ended()  # stale again: no other server, so a fresh connection
    lab.exchange.server_ready(False)
    lab.exchange.server_ended()  # then failed: no try left, 502
    assert lab.port.sent_to_client().endswith(error_response(502))
    pairs = [name for name, _ in Ledger.log]
    assert pairs == ["taken", "released"] * 4
    assert all(s.conns == 0 for s in lab.service.servers)


@pytest.mark.parametrize(
    ("request_bytes", "status", "location"),
    [
        (b"GET /a/b?x=1 HTTP/1.1\r\nHost: site.example\r\n\r\n", 301, b"https://site.example/a/b?x=1"),
        (b"HEAD / HTTP/1.1\r\nhost:  site.example:80 \r\n\r\n", 301, b"https://site.example/"),
        (b"POST /form HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 3\r\n\r\nabc", 308, b"https://[::1]:8080/form"),
        (b"GET http://abs.example/p HTTP/1.1\r\nHost: other\r\n\r\n", 301, b"https://abs.example/p"),
    ],
)  # fmt: skip
def test_redirect_https_sends_every_request_to_the_same_url_over_https(
    request_bytes, status, location
):
    lab = started(SERVERS + "\n    redirect = https")
    lab.exchange.client_data(request_bytes)
    actions = lab.port.take()
    assert actions[-2:] == [("drop", None), ("close", None)]
    answer = actions[0][1]
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nLocation: " + location + b"\r\n" in answer
    assert not any(name in ("open", "server") for name, _ in actions)
    assert lab.service.stats.responses[2] == 1 and lab.service.stats.errors == 0


def test_redirect_https_without_a_usable_host_is_400():
    lab = started(SERVERS + "\n    redirect = https")
    lab.exchange.client_data(b"GET / HTTP/1.0\r\n\r\n")
    assert lab.port.take()[0] == ("client", error_response(400))
