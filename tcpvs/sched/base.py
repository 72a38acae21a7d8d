"""The scheduler contract: what a plugin implements and when the engine calls it.

A scheduler is a class registered under a name in the `tcpvs.schedulers` entry-point group
(exactly how the built-in ones register). The engine makes one instance per virtual service;
like HAProxy's `lb_*` operations, it is asked to choose and told what happens.

Choosing, per client connection (raw TCP) or per request (HTTP):
1. The engine routes: for an HTTP request, the first matching rule gives the candidate servers
   (every server of the service when it has no rules at all); a raw TCP connection gets every
   server.
2. It drops servers with weight 0, servers that already failed for this request and servers
   resting after a refused connection, then calls `select(candidates, ctx)` with the rest
   (possibly empty). It is a read-only sequence: when nothing was dropped it is the rule's (or
   service's) own server list, not a copy, so a scheduler must not modify it. A failed attempt
   calls `select` again with the same `ctx`. Weigh by `server.weight`: the configured weight,
   or a share of it (a float) while the server ramps up after coming back (slow start).
3. For HTTP, before sending the response head to the client it calls `response_headers(ctx,
   server)` and inserts the returned header lines (chttp's cookie).

Being told (every method below does nothing by default; override what you need):
- `taken(server, ctx)`: the engine now relays a connection (raw TCP) or a request (HTTP) on
  `server`; `server.conns` was just counted up. `released(server)`: it ended, however it
  ended (answer, error, timeout, client gone); `server.conns` was just counted down. Each
  `taken` is followed by exactly one `released`, so `conns` is exact.
- `server_added(server)`, `server_removed(server)`: the table changed (tcpvsadm -a/-d, a
  config load, a new scheduler for the service: it is told of every server already there).
- `server_changed(server)`: its weight was edited.
Keep per-server state in a dict keyed by the server object and drop it in
`server_removed`: servers compare by identity, and a removed server never comes back (one
added again at the same address is a new object).

`select` and `taken`/`released` run on the event loop for every request: they must not block
and should be O(servers). The engine calls `taken`/`released` and `response_headers` only on
schedulers that override them, so the others pay nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from tcpvs.table.model import RealServer, Rule

_SEARCH: Any = object()  # ScheduleContext.match not computed yet


class ScheduleContext:
    """What a scheduler may look at to choose a server for one connection or request."""

    __slots__ = ("request", "rule", "_match", "client", "previous", "session")

    def __init__(
        self,
        request: Any = None,
        rule: Rule | None = None,
        match: Any = _SEARCH,
        client: tuple | None = None,
        previous: RealServer | None = None,
    ) -> None:
        self.request = request  # tcpvs.http.RequestHead, or None for raw TCP
        self.rule = rule  # the rule that matched, None for raw TCP or a rule-less service
        self._match = match
        self.client = client  # the client's (host, port)
        self.previous = previous  # server of the previous request on this client connection
        self.session: Any = None  # scratch space a scheduler may use between select and response

    def next_request(self, request: Any, rule: Rule | None, previous: RealServer | None) -> None:
        """Reuse this context for the next request of the same client connection."""
        self.request, self.rule, self._match = request, rule, _SEARCH
        self.previous, self.session = previous, None

    @property
    def match(self) -> Any:
        """The regex match object of `rule` on the URI (None without a rule). Computed on first
        use: routing tests most rules as plain strings, and few schedulers look at groups."""
        if self._match is _SEARCH:
            rule, request = self.rule, self.request
            found = None
            if rule is not None and request is not None:
                found = rule.compiled.search(request.target)
            self._match = found
        return self._match


class Scheduler:
    """Base class of every scheduler plugin."""

    name: ClassVar[str] = ""
    # True: the service parses HTTP and routes every request even when it has no rules.
    # False: without rules the service relays raw TCP (any protocol), one choice per connection.
    http: ClassVar[bool] = False
    # Set for each subclass: whether it overrides response_headers() / taken() or released(),
    # so that the engine calls them only for the schedulers that use them (per request).
    adds_headers: ClassVar[bool] = False
    follows_load: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.adds_headers = cls.response_headers is not Scheduler.response_headers
        cls.follows_load = (
            cls.taken is not Scheduler.taken or cls.released is not Scheduler.released
        )

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        """Pick one of `servers` (all have weight > 0), or None when none will do."""
        raise NotImplementedError

    def response_headers(self, ctx: ScheduleContext, server: RealServer) -> bytes:
        """Header lines (each ending in CRLF) to add to the response head; none by default."""
        return b""

    # -- notifications ------------------------------------------------------------------------

    def taken(self, server: RealServer, ctx: ScheduleContext) -> None:
        """`server` now relays one more connection or request (`server.conns` counted up)."""

    def released(self, server: RealServer) -> None:
        """One connection or request of `server` ended (`server.conns` counted down)."""

    def server_added(self, server: RealServer) -> None:
        """`server` joined the service."""

    def server_removed(self, server: RealServer) -> None:
        """`server` left the service: forget what is kept about it."""

    def server_changed(self, server: RealServer) -> None:
        """`server`'s weight changed."""
