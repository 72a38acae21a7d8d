"""The objects of the service table: services, real servers and rules (settings: settings.py).

Plain data plus the live counters the engine updates; no I/O. The engine reads these objects
directly on every request, so an edit made through the table takes effect at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import regex

from tcpvs.health.spec import CheckSpec
from tcpvs.table.addr import Address
from tcpvs.table.budget import RetryBudget
from tcpvs.table.counters import (
    CAUSES,
    STATUS_CLASSES,
    Histogram,
    add_counts,
    by_cause,
    by_status_class,
)
from tcpvs.table.settings import Settings

if TYPE_CHECKING:
    from tcpvs.health.state import Health
    from tcpvs.sched.base import Scheduler
    from tcpvs.tls.certs import CertStore
    from tcpvs.tls.upstream import UpstreamTls

DEFAULT_PORT = 8080
DEFAULT_SCHEDULER = "http"
DEFAULT_SERVER_PORT = 80
MAX_WEIGHT = 65535
MAX_MATCH = 10
# Patterns that make a rule the default route: always tried after every other rule.
DEFAULT_PATTERNS = (".*", "^/.*")


# A real server's states (RealServer.state), and what an operator may ask (RealServer.admin).
UP, DOWN, DRAIN, MAINT, READY = "up", "down", "drain", "maint", "ready"
ADMIN_STATES = (READY, DRAIN, MAINT)

# The share of its weight a server starts a slow start with (HAProxy starts near 0 too).
RAMP_FLOOR = 0.05

# The totals a service and a server both count (live counts, like `conns`, are not totals).
TOTALS = ("total_conns", "requests", "bytes_in", "bytes_out")


def _carry(new: object, old: object, names: tuple[str, ...]) -> None:
    for name in names:
        setattr(new, name, getattr(old, name))


def _values(counters: object, names: tuple[str, ...]) -> dict[str, int]:
    return {name: getattr(counters, name) for name in names}


@dataclass(eq=False, slots=True)
class RealServer:
    """A real server of one service, with the live counters schedulers and stats read."""

    address: Address
    # What schedulers read: the operator's weight (`configured`), or a share of it while the
    # server ramps up after coming back (slow start: ramp()).
    weight: float = 1
    configured: int = -1  # the operator's weight (`server = ADDR W`, -w); -1: `weight`'s
    ramp_start: float = 0.0  # monotonic time its slow start began (0: none going on)
    conns: int = 0  # connections (raw TCP) or requests (HTTP) being relayed right now
    total_conns: int = 0  # connections opened to this server since it was added
    requests: int = 0  # HTTP requests sent
    bytes_in: int = 0  # bytes sent to the server
    bytes_out: int = 0  # bytes received from the server
    failures: int = 0  # connection attempts that failed
    retries: int = 0  # requests sent again (elsewhere or anew) after this server failed them
    down_until: float = 0.0  # loop time before which a server is skipped (inf: not `up`)
    # The operator's say (tcpvsadm -e --state): ready, drain (no new requests) or maint (no
    # requests, no checks); the checks' say: up or down. `state` is what both make of it.
    admin: str = READY
    health: str = UP
    state: str = UP
    since: float = 0.0  # wall time of the last change of `state` (0: none yet)
    checks: Health | None = None  # its check results, while it is checked
    # Reached over TLS (`server = ... tls [NAME]`): NAME is sent as SNI and checked against
    # its certificate (None: the host it was written with).
    tls: bool = False
    tls_name: str | None = None
    # Its own check (`server = ... check SPEC`), in place of its service's when own_check;
    # None with own_check: this server is not checked (`check none`).
    own_check: bool = False
    check: CheckSpec | None = None
    # Passive checks (docs/health.md): answers and connections that failed in a row, how
    # often it was ejected for that, and until when (loop time) the current ejection lasts.
    error_streak: int = 0
    fail_streak: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    responses: list[int] = field(default_factory=lambda: [0] * len(STATUS_CLASSES))
    first_byte: Histogram = field(default_factory=Histogram)  # request head -> response head
    duration: Histogram = field(default_factory=Histogram)  # first request byte -> answer end

    def __post_init__(self) -> None:
        if self.configured < 0:
            self.configured = int(self.weight)

    def set_weight(self, weight: int) -> None:
        """The operator's new weight, in force at once (a slow start goes on from it)."""
        self.configured = weight
        self.weight = weight

    def ramp(self, now: float, seconds: float) -> bool:
        """Set the weight a slow start of `seconds` gives at monotonic time `now`: from
        RAMP_FLOOR of the configured weight up to all of it, in proportion to the time since
        it began. True while it goes on."""
        elapsed = now - self.ramp_start
        if elapsed >= seconds:
            self.weight = self.configured
            self.ramp_start = 0.0
            return False
        self.weight = self.configured * max(elapsed / seconds, RAMP_FLOOR)
        return True

    def stats(self) -> dict[str, Any]:
        return {
            **_values(self, ("conns", *TOTALS, "failures", "retries")),
            "responses": by_status_class(self.responses),
            "first_byte": self.first_byte.as_dict(),
            "duration": self.duration.as_dict(),
        }

    def update_state(self, now: float) -> bool:
        """Recompute `state` from `admin` and `health`; True if it changed. A server not `up`
        is skipped by every scheduler, through `down_until` (no cost per request)."""
        if self.admin != READY:
            state = self.admin
        else:
            state = self.health
        if state == self.state:
            return False
        self.state, self.since = state, now
        self.down_until = 0.0 if state == UP else math.inf
        return True

    def carry_counters(self, old: RealServer) -> None:
        """Go on counting from `old`'s totals (a reload replaced it; live counts start anew)."""
        _carry(self, old, (*TOTALS, "failures", "retries"))
        _carry(self, old, ("admin", "health", "state", "since", "down_until", "checks"))
        _carry(self, old, ("ejections", "ejected_until", "ramp_start"))
        add_counts(self.responses, old.responses)
        self.first_byte.add(old.first_byte)
        self.duration.add(old.duration)


@dataclass(eq=False, slots=True)
class Rule:
    """A regex on the Request-URI and the servers it sends matching requests to."""

    pattern: str
    match: int
    servers: list[RealServer]
    compiled: Any = None  # regex.Pattern[bytes]
    # The pattern as a plain string test when it is one (most rules are): see literal_test().
    literal: bytes | None = field(default=None, init=False)
    anchored: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.compiled is None:
            self.compiled = compile_pattern(self.pattern)
        test = literal_test(self.pattern)
        if test is not None:
            self.literal, self.anchored = test

    @property
    def is_default(self) -> bool:
        return self.pattern in DEFAULT_PATTERNS


SNI_DEFAULT = "*"  # the SNI rule every connection that no other rule takes goes to
_SNI_NAME = regex.compile(r"(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


@dataclass(eq=False, slots=True)
class SniRule:
    """A TLS passthrough rule: connections whose ClientHello names a matching server (SNI)
    go to its servers. `pattern`: a name, `*.example.com` (any name ending in .example.com,
    as nginx's server_name), `~REGEX` (searched in the name) or `*` (the default rule: every
    connection no other rule takes, those without SNI too)."""

    pattern: str
    servers: list[RealServer]
    compiled: Any = None  # regex.Pattern[str] of a ~REGEX pattern

    def __post_init__(self) -> None:
        if self.compiled is None:
            self.compiled = compile_sni_pattern(self.pattern)

    @property
    def is_default(self) -> bool:
        return self.pattern == SNI_DEFAULT

    def matches(self, name: str) -> bool:
        """Whether the (lower-case) server name is this rule's; never for the default rule."""
        pattern = self.pattern
        if self.compiled is not None:
            return self.compiled.search(name) is not None
        if pattern.startswith("*."):
            return name.endswith(pattern[1:])
        return name == pattern


def compile_sni_pattern(pattern: str) -> Any:
    """The regex of a `~REGEX` SNI pattern, None for a name; ValueError for a bad pattern."""
    if pattern.startswith("~"):
        try:
            return regex.compile(pattern[1:], regex.IGNORECASE)
        except regex.error as exc:
            raise ValueError(f"invalid sni pattern {pattern!r}: {exc}") from None
    if pattern != SNI_DEFAULT and not _SNI_NAME.fullmatch(pattern):
        raise ValueError(f"invalid sni pattern {pattern!r} (a host name, *.name, ~regex or *)")
    return None


_METACHARACTERS = frozenset("\\.^$*+?{}[]|()")


def literal_test(pattern: str) -> tuple[bytes, bool] | None:
    """(text, anchored) when searching `pattern` in a URI is the same as testing that the URI
    starts with (anchored) or contains `text`; None when the regex is needed.

    A trailing `.*` can always match nothing, so it never decides a search; URIs hold no
    newline (the parser refuses them), the only character `.` does not match.
    """
    anchored = pattern.startswith("^")
    body = pattern[1:] if anchored else pattern
    if body.endswith(".*") and not body.endswith("\\.*"):
        body = body[:-2]
    if any(c in _METACHARACTERS for c in body):
        return None
    try:
        return body.encode("latin-1"), anchored
    except UnicodeEncodeError:
        return None


def compile_pattern(pattern: str) -> Any:
    """Compile a rule pattern (POSIX ERE style, as KTCPVS used) for matching raw URI bytes."""
    try:
        return regex.compile(pattern.encode("latin-1", "strict"))
    except (regex.error, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from exc
    except RecursionError:  # the compiler recurses once per nested group
        raise ValueError("invalid pattern: groups nested too deeply") from None


@dataclass(eq=False, slots=True)
class ServiceStats:
    conns: int = 0  # client connections open now
    total_conns: int = 0
    requests: int = 0
    bytes_in: int = 0  # bytes received from clients
    bytes_out: int = 0  # bytes sent to clients
    errors: int = 0  # error responses generated by the switch (4xx/5xx)
    retries: int = 0  # requests sent again after a server failed them
    responses: list[int] = field(default_factory=lambda: [0] * len(STATUS_CLASSES))
    causes: list[int] = field(default_factory=lambda: [0] * len(CAUSES))  # by counters.CAUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            **_values(self, ("conns", *TOTALS, "errors", "retries")),
            "responses": by_status_class(self.responses),
            "causes": by_cause(self.causes),
        }

    def carry_counters(self, old: ServiceStats) -> None:
        """Go on counting from `old`'s totals (a reload replaced it; live counts start anew)."""
        _carry(self, old, (*TOTALS, "errors", "retries"))
        add_counts(self.responses, old.responses)
        add_counts(self.causes, old.causes)


@dataclass(eq=False, slots=True)
class Service:
    """A virtual service: where it listens, how it schedules, its servers and rules."""

    ident: str
    listen: Address
    scheduler_name: str
    scheduler: Scheduler
    settings: Settings = field(default_factory=Settings)
    redirect: Address | None = None
    redirect_https: bool = False  # `redirect = https`: every request answered 301/308 to https
    servers: list[RealServer] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    sni_rules: list[SniRule] = field(default_factory=list)  # TLS passthrough, by SNI
    running: bool = False
    stats: ServiceStats = field(default_factory=ServiceStats)
    check: CheckSpec | None = None  # how its servers are checked (None: they are not)
    budget: RetryBudget = field(default_factory=RetryBudget)
    certs: CertStore | None = None  # a TLS service's certificates (None: plain TCP)
    upstream: UpstreamTls | None = None  # how its `tls` servers are reached (made when needed)

    @property
    def speaks_http(self) -> bool:
        """HTTP services parse every request; others relay raw TCP (any protocol)."""
        return (bool(self.rules) or self.scheduler.http) and not self.sni_rules

    def check_of(self, server: RealServer) -> CheckSpec | None:
        """How `server` is checked: its own check if it has one, else the service's."""
        return server.check if server.own_check else self.check

    def find_server(self, address: Address) -> RealServer | None:
        for server in self.servers:
            if server.address == address:
                return server
        return None

    def route_sni(self, name: str | None) -> SniRule | None:
        """The SNI rule of a connection whose ClientHello named `name` (None: no SNI, or no
        readable ClientHello): the first that matches, else the default rule, if any."""
        default = None
        for rule in self.sni_rules:
            if rule.is_default:
                default = rule
            elif name is not None and rule.matches(name):
                return rule
        return default

    def route(self, uri: bytes) -> Rule | None:
        """First rule whose pattern matches the URI (unanchored search)."""
        for rule in self.rules:  # inlined tests: this runs for every request
            literal = rule.literal
            if literal is None:
                if rule.compiled.search(uri) is not None:
                    return rule
            elif uri.startswith(literal) if rule.anchored else literal in uri:
                return rule
        return None
