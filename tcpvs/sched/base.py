"""The scheduler contract: what a plugin implements and when the engine calls it.

A scheduler is a class registered under a name in the `tcpvs.schedulers` entry-point group
(exactly how the built-in ones register). The engine makes one instance per virtual service.

Call order, per client connection (raw TCP) or per request (HTTP):
1. The engine routes: for an HTTP request, the first matching rule gives the candidate servers
   (every server of the service when it has no rules at all); a raw TCP connection gets every
   server.
2. It drops servers with weight 0, servers that already failed for this request and servers
   resting after a refused connection, then calls `select(candidates, ctx)` with the rest
   (possibly empty). It is a read-only sequence: when nothing was dropped it is the rule's (or
   service's) own server list, not a copy, so a scheduler must not modify it. A failed attempt
   calls `select` again with the same `ctx`.
3. It counts the chosen server's `conns` up while the connection/request is relayed and down
   after, so least-connection schedulers read live values.
4. For HTTP, before sending the response head to the client it calls `response_headers(ctx,
   server)` and inserts the returned header lines (chttp's cookie).

`select` runs on the event loop for every request: it must not block and should be O(servers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from tcpvs.model import RealServer, Rule

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
    # Set for each subclass: whether it overrides response_headers(), so that the engine calls
    # it only for the schedulers that add headers (it runs for every response).
    adds_headers: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.adds_headers = cls.response_headers is not Scheduler.response_headers

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        """Pick one of `servers` (all have weight > 0), or None when none will do."""
        raise NotImplementedError

    def response_headers(self, ctx: ScheduleContext, server: RealServer) -> bytes:
        """Header lines (each ending in CRLF) to add to the response head; none by default."""
        return b""
