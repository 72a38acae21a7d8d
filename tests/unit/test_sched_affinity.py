"""Schedulers that keep clients or keys on one server: phttp, hhttp, chttp."""

from __future__ import annotations

from collections import Counter
from http.cookies import SimpleCookie

import pytest

from tcpvs.sched.base import ScheduleContext
from tcpvs.sched.hashing import HhttpScheduler
from tcpvs.sched.sticky import ChttpScheduler, PhttpScheduler
from tcpvs.table.addr import Address
from tcpvs.table.model import RealServer, Rule

USERS = "/users/([^/]+)/"


def servers(*weights: int, first_port: int = 9001) -> list[RealServer]:
    return [RealServer(Address("127.0.0.1", first_port + i), w) for i, w in enumerate(weights)]


class Head:
    """A parsed request head as schedulers see it: the target and headers by name."""

    def __init__(self, target: bytes, **headers: bytes) -> None:
        self.target = target
        self._headers = {name.lower().encode(): value for name, value in headers.items()}

    def header(self, name: bytes) -> bytes | None:
        return self._headers.get(name.lower())


def routed(rule: Rule, uri: bytes, **headers: bytes) -> ScheduleContext:
    """The context the engine builds for a request that matched `rule`."""
    match = rule.compiled.search(uri)
    assert match is not None
    return ScheduleContext(Head(uri, **headers), rule, match, ("127.0.0.1", 40000))


# -- phttp --------------------------------------------------------------------------------


def test_phttp_keeps_a_keepalive_client_on_its_server() -> None:
    a, b, c = servers(1, 1, 1)
    phttp = PhttpScheduler()
    a.conns, b.conns, c.conns = 5, 0, 3
    first = phttp.select([a, b, c], ScheduleContext(Head(b"/")))
    assert first is b  # wlc for the connection's first request
    b.conns = 9  # b is now the busiest; the same client still stays there
    for _ in range(5):
        assert phttp.select([a, b, c], ScheduleContext(Head(b"/x"), previous=b)) is b
    # Its next request matches a rule without b (or b is quiesced/failing): rescheduled.
    assert phttp.select([a, c], ScheduleContext(Head(b"/img"), previous=b)) is c
    assert phttp.select([], ScheduleContext(Head(b"/"), previous=b)) is None


# -- hhttp --------------------------------------------------------------------------------


def placements(rule: Rule, users: list[str], sched: HhttpScheduler | None = None) -> dict:
    sched = sched or HhttpScheduler()
    return {
        user: sched.select(rule.servers, routed(rule, f"/users/{user}/home".encode()))
        for user in users
    }


def test_hhttp_same_user_same_server() -> None:
    pool = servers(1, 1, 1, 1)
    rule = Rule(USERS, 1, pool)
    hhttp = HhttpScheduler()
    users = [f"user{i}" for i in range(200)]
    first = placements(rule, users, hhttp)
    assert len(set(first.values())) == 4
    for i in range(20):  # load changes nothing: the key decides
        pool[i % 4].conns += 7
        assert placements(rule, users, hhttp) == first
    # A fresh instance, servers listed in another order, equal but new server objects.
    again = Rule(USERS, 1, servers(1, 1, 1, 1)[::-1])
    by_address = {u: s.address for u, s in placements(again, users).items()}
    assert by_address == {u: s.address for u, s in first.items()}
    # Only the sub-expression counts: the rest of the URI does not.
    assert hhttp.select(pool, routed(rule, b"/users/user7/x?y=1")) is first["user7"]


def test_hhttp_spreads_keys_by_weight() -> None:
    users = [f"u{i}" for i in range(6000)]
    pool = servers(1, 1, 1)
    counts = Counter(placements(Rule(USERS, 1, pool), users).values())
    assert all(abs(counts[s] / 6000 - 1 / 3) < 0.03 for s in pool), counts
    pool = servers(3, 1)
    counts = Counter(placements(Rule(USERS, 1, pool), users).values())
    assert abs(counts[pool[0]] / 6000 - 0.75) < 0.03, counts


def test_hhttp_adding_or_removing_a_server_moves_few_keys() -> None:
    users = [f"u{i}" for i in range(4000)]
    pool = servers(1, 1, 1, 1)
    before = placements(Rule(USERS, 1, pool), users)
    grown = pool + servers(1, first_port=9100)
    after = placements(Rule(USERS, 1, grown), users)
    moved = [u for u in users if after[u] is not before[u]]
    assert 0.15 < len(moved) / len(users) < 0.25  # about 1/5
    assert all(after[u] is grown[4] for u in moved)  # only to the new server
    shrunk = [pool[0], pool[2], pool[3]]  # pool[1] deleted (or weight 0, or failing)
    after = placements(Rule(USERS, 1, shrunk), users)
    assert all(after[u] is before[u] for u in users if before[u] is not pool[1])
    assert {after[u] for u in users if before[u] is pool[1]} == set(shrunk)


def test_hhttp_whole_match_and_odd_keys() -> None:
    pool = servers(1, 1, 1)
    hhttp = HhttpScheduler()
    anchored = Rule("^/static/.*", 0, pool)  # KTCPVS refused matches at offset 0
    ctx = routed(anchored, b"/static/app.js")
    assert hhttp.select(pool, ctx) is hhttp.select(pool[::-1], routed(anchored, b"/static/app.js"))
    assert hhttp.select(pool, ctx) is not None
    latin = Rule(USERS, 1, pool)  # bytes >= 0x80 gave KTCPVS a negative hash: no server
    assert hhttp.select(pool, routed(latin, "/users/jürgen/".encode())) in pool
    assert hhttp.select(pool, routed(latin, b"/users/%C3%BC/")) in pool
    assert hhttp.select([], routed(latin, b"/users/bob/")) is None


def test_hhttp_without_a_key_falls_back_to_least_connections() -> None:
    a, b = servers(1, 1)
    a.conns = 3
    hhttp = HhttpScheduler()
    optional = Rule("^/(users/([^/]+)/)?", 2, [a, b])  # group 2 takes no part in "/about"
    assert hhttp.select([a, b], routed(optional, b"/about")) is b
    assert hhttp.select([a, b], ScheduleContext(Head(b"/"))) is b  # a service without rules


# -- chttp --------------------------------------------------------------------------------


def next_cookie(set_cookie: bytes) -> bytes:
    """What a browser sends back after this Set-Cookie line (name=value only)."""
    assert set_cookie.endswith(b"\r\n")
    name, _, value = set_cookie[:-2].partition(b": ")
    assert name == b"Set-Cookie"
    jar = SimpleCookie(value.decode("latin-1"))
    morsel = jar["KTCPVS_SID"]
    assert morsel["path"] == "/"
    return f"theme=dark; KTCPVS_SID={morsel.value}; lang=en".encode()


def request(sched: ChttpScheduler, pool: list, cookie: bytes | None = None) -> tuple:
    """Schedule one request; return the server and the headers added to its response."""
    ctx = ScheduleContext(Head(b"/cart", **({"Cookie": cookie} if cookie else {})))
    server = sched.select([s for s in pool if s.weight > 0], ctx)
    return server, sched.response_headers(ctx, server) if server is not None else b""


def test_chttp_cookie_round_trip() -> None:
    a, b, c = servers(1, 1, 1)
    chttp = ChttpScheduler()
    a.conns, c.conns = 2, 1
    server, headers = request(chttp, [a, b, c])
    assert server is b  # no cookie: wlc
    token = headers.split(b"=", 1)[1].split(b";")[0]
    assert len(token) == 16 and all(ch in b"0123456789abcdef" for ch in token)
    cookie = next_cookie(headers)
    b.conns = 50  # the busiest now, but the client's cookie names it
    for _ in range(3):
        assert request(chttp, [a, b, c], cookie) == (b, b"")
    # The same cookie means the same server to another process or after a restart.
    fresh = servers(1, 1, 1)
    assert request(ChttpScheduler(), fresh, cookie) == (fresh[1], b"")


def test_chttp_reschedules_a_cookie_for_a_gone_server() -> None:
    a, b, c = servers(1, 1, 1)
    chttp = ChttpScheduler()
    server, headers = request(chttp, [a, b, c])
    assert server is a
    cookie = next_cookie(headers)
    a.weight = 0  # quiesced
    server, headers = request(chttp, [a, b, c], cookie)
    assert server is b
    assert headers.startswith(b"Set-Cookie: KTCPVS_SID=") and next_cookie(headers) != cookie
    cookie_b = next_cookie(headers)
    assert request(chttp, [a, b, c], cookie_b) == (b, b"")
    server, headers = request(chttp, [a, c], cookie_b)  # b deleted
    assert server is c and next_cookie(headers) not in (cookie, cookie_b)
    assert request(chttp, [], cookie_b) == (None, b"")


@pytest.mark.parametrize(
    "cookie",
    [
        b"KTCPVS_SID=",
        b"KTCPVS_SID=0",
        b"KTCPVS_SID=zzzz; other=1",
        b"XKTCPVS_SID={token}",  # another cookie whose name merely ends the same
        b"ktcpvs_sid={token}",  # cookie names are case-sensitive
        b"other={token}",
    ],
)
def test_chttp_ignores_foreign_or_broken_cookies(cookie: bytes) -> None:
    a, b = servers(1, 1)
    chttp = ChttpScheduler()
    _, headers = request(chttp, [a, b])
    token = next_cookie(headers).split(b"KTCPVS_SID=")[1].split(b";")[0]  # a's token
    b.conns = 0
    a.conns = 1
    server, headers = request(chttp, [a, b], cookie.replace(b"{token}", token))
    assert server is b
    assert headers.startswith(b"Set-Cookie: KTCPVS_SID=")


def test_chttp_finds_its_cookie_among_others() -> None:
    a, b = servers(1, 1)
    chttp = ChttpScheduler()
    b.conns = 1
    _, headers = request(chttp, [a, b])
    token = next_cookie(headers).split(b"KTCPVS_SID=")[1].split(b";")[0]
    a.conns = 5
    for cookie in (
        b"KTCPVS_SID=" + token,
        b"a=1;KTCPVS_SID=" + token + b";b=2",
        b'KTCPVS_SID="' + token + b'"',
        b"KTCPVS_SID=0000000000000000; KTCPVS_SID=" + token,  # a stale one first
    ):
        assert request(chttp, [a, b], cookie) == (a, b""), cookie
