"""Sticky schedulers: a client keeps its server. `phttp` by keep-alive connection, `chttp` by a
cookie naming the server."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import weighted_least_conns
from tcpvs.sched.serverid import server_digest
from tcpvs.table.addr import Address
from tcpvs.table.model import RealServer


class PhttpScheduler(Scheduler):
    """`phttp`: persistent-connection HTTP: a keep-alive client stays on its server.

    When the server of the previous request on the same client connection is among this
    request's candidates (its rule offers it, its weight is > 0, it has not failed), it is kept,
    so the pooled server connection and any server-side state are reused; otherwise wlc picks.
    KTCPVS phttp hashed the URI's match instead (its wlc call was commented out) and dropped the
    connection when no server matched after the first request; here that is `hhttp`'s job.
    """

    name = "phttp"
    http = True

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        previous = ctx.previous
        if previous is not None and previous in servers:  # RealServer compares by identity
            return previous
        return weighted_least_conns(servers)


COOKIE_NAME = b"KTCPVS_SID"


@lru_cache(maxsize=4096)
def cookie_token(address: Address) -> bytes:
    """The cookie value that names the server at `address`."""
    return server_digest(address).hex().encode("ascii")


@lru_cache(maxsize=4096)
def set_cookie_line(address: Address) -> bytes:
    """The response header line that pins a client to the server at `address`."""
    return b"Set-Cookie: " + COOKIE_NAME + b"=" + cookie_token(address) + b"; Path=/\r\n"


def cookie_values(header: bytes, name: bytes = COOKIE_NAME) -> list[bytes]:
    """Every value of cookie `name` in a Cookie header (`a=1; name=v; b=2`), in order."""
    values = []
    for pair in header.split(b";"):
        key, eq, value = pair.partition(b"=")
        if eq and key.strip() == name:
            values.append(value.strip().strip(b'"'))
    return values


def pinned_server(ctx: ScheduleContext, servers: Sequence[RealServer]) -> RealServer | None:
    """The candidate named by the request's KTCPVS_SID cookie, if any."""
    request = ctx.request
    header = request.header(b"cookie") if request is not None else None
    if not header or COOKIE_NAME not in header:  # the common case costs one substring search
        return None
    for token in cookie_values(header):
        for server in servers:
            if cookie_token(server.address) == token:
                return server
    return None


class ChttpScheduler(Scheduler):
    """`chttp`: cookie persistence, like HAProxy's `cookie KTCPVS_SID insert`.

    The cookie value names a server by a token derived from its address alone (16 hex digits of
    blake2b("host:port")), so it means the same server in every tcpvsd process and after a
    restart, with no session table to fill or expire. A request whose `KTCPVS_SID` names one of
    its candidates goes there; any other request is scheduled by wlc and its response gets
    `Set-Cookie: KTCPVS_SID=<token>; Path=/`. A cookie naming a removed, quiesced (weight 0) or
    failing server, or one outside the matching rule, is therefore re-scheduled and replaced.

    The cookie is one per service: where rules offer disjoint server sets, it names the server
    of the last set used, so stickiness holds within one rule (or a rule-less service).

    Differences from KTCPVS chttp: its ids came from a per-module counter (meaningless to another
    process, reused after a reload) mapped to servers in a table that expired with the server's
    own cookies; it inserted the cookie only into responses that already set one; a known id won
    over rules and weights (even weight 0). The token is not secret: it names a server, not a
    client, and whoever guesses the internal addresses can recompute it.
    """

    name = "chttp"
    http = True

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        pinned = pinned_server(ctx, servers)
        ctx.session = pinned  # the response needs no cookie when the request named its server
        return pinned if pinned is not None else weighted_least_conns(servers)

    def response_headers(self, ctx: ScheduleContext, server: RealServer) -> bytes:
        if ctx.session is server:
            return b""
        return set_cookie_line(server.address)
