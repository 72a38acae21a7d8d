"""The objects of the service table: services, their settings, real servers and rules.

Plain data plus the live counters the engine updates; no I/O (the maxclients default reads
the open-files limit). The engine reads these objects directly on every request, so an edit
made through the table takes effect at once.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import regex

from tcpvs.addr import Address

if TYPE_CHECKING:
    from tcpvs.sched.base import Scheduler

DEFAULT_PORT = 8080
DEFAULT_SCHEDULER = "http"
DEFAULT_SERVER_PORT = 80
MAX_WEIGHT = 65535
MAX_MATCH = 10
# Patterns that make a rule the default route: always tried after every other rule.
DEFAULT_PATTERNS = (".*", "^/.*")


# maxclients by default: what the open-files limit can serve, as HAProxy derives maxconn from
# `ulimit -n`. A proxied client holds two descriptors (its socket and one to a real server);
# FD_RESERVE is kept for listeners, the control socket, splice pipes and logs.
FD_RESERVE = 64
FDS_PER_CLIENT = 2
MIN_DEFAULT_MAXCLIENTS = 256  # KTCPVS's fixed default: never less than that
MAX_MAXCLIENTS = 1 << 20  # the setting's ceiling: fs.nr_open's default


def maxclients_for(nofile: int) -> int:
    """The default maxclients under an open-files limit of `nofile` descriptors."""
    return min(max((nofile - FD_RESERVE) // FDS_PER_CLIENT, MIN_DEFAULT_MAXCLIENTS), MAX_MAXCLIENTS)


def default_maxclients() -> int:
    """maxclients for a service made now: read when it is made, not at import, so that the
    limit tcpvsd raised at start (daemon.raise_nofile_limit) counts."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return MAX_MAXCLIENTS if soft == resource.RLIM_INFINITY else maxclients_for(soft)


@dataclass(frozen=True)
class Setting:
    """One per-service setting: its name in config files, its type, range and default.

    `classic` settings are the KTCPVS ones, always printed by `-L`; the others are printed only
    when they differ from their default, so the original layout stays unchanged.
    """

    name: str
    kind: type  # int, float or bool
    default: Any | Callable[[], Any]  # a value, or a function giving it when a service is made
    low: float = 0
    high: float = 65535
    classic: bool = False
    help: str = ""

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("startservers", int, 8, 1, 65535, True, "accepted for compatibility (see docs)"),
    Setting(
        "maxclients",
        int,
        default_maxclients,
        1,
        MAX_MAXCLIENTS,
        True,
        "concurrent client connections",
    ),
    Setting("minspareservers", int, 6, 1, 65535, True, "accepted for compatibility"),
    Setting("maxspareservers", int, 18, 1, 65535, True, "accepted for compatibility"),
    Setting("connect_timeout", float, 5.0, 0.001, 3600, help="seconds to connect to a server"),
    Setting("client_timeout", float, 10.0, 0.001, 3600, help="seconds to receive a request head"),
    Setting("server_timeout", float, 60.0, 0.001, 86400, help="seconds to wait for a response"),
    Setting("keepalive_timeout", float, 30.0, 0.001, 86400, help="idle keep-alive seconds"),
    Setting("read_timeout", float, 180.0, 0.001, 86400, help="idle seconds of a raw/tunnel relay"),
    Setting("fail_timeout", float, 10.0, 0, 3600, help="seconds a refusing server is skipped"),
    Setting("max_head_size", int, 16384, 1024, 1048576, help="largest request head (else 431)"),
    Setting("forwardfor", bool, True, help="add X-Forwarded-For to HTTP requests"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
_SWITCH_WORDS = {"on": True, "yes": True, "true": True, "1": True}
_SWITCH_WORDS |= {"off": False, "no": False, "false": False, "0": False}


def default_settings() -> dict[str, Any]:
    """Every setting of a new service at its default."""
    return {s.name: s.default_value() for s in SETTINGS}


def _bound(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def check_setting(name: str, value: Any) -> Any:
    """Return `value` (config text or a JSON value) converted to the setting's type.

    ValueError, with the message for the user, for anything else: so that a value from the
    control socket (inf, NaN, a huge integer, a list) never raises another exception."""
    spec = SETTINGS_BY_NAME[name]
    if spec.kind is bool:
        if isinstance(value, str) and value.lower() in _SWITCH_WORDS:
            return _SWITCH_WORDS[value.lower()]
        if isinstance(value, int) and value in (0, 1):  # True, False, 0, 1
            return bool(value)
        raise ValueError(f"{name} must be on or off")
    if isinstance(value, str):
        value = spec.kind(value)  # its ValueError says what is wrong with the text
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    # Compared before converting: int(inf) and float(10**400) would raise OverflowError.
    # NaN compares false, so it is out of range too.
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{name} must be between {_bound(spec.low)} and {_bound(spec.high)}")
    if spec.kind is int and value != int(value):
        raise ValueError(f"{name} must be a whole number")
    return spec.kind(value)


@dataclass(eq=False, slots=True)
class RealServer:
    """A real server of one service, with the live counters schedulers and stats read."""

    address: Address
    weight: int = 1
    conns: int = 0  # connections (raw TCP) or requests (HTTP) being relayed right now
    total_conns: int = 0  # connections opened to this server since it was added
    requests: int = 0  # HTTP requests sent
    bytes_in: int = 0  # bytes sent to the server
    bytes_out: int = 0  # bytes received from the server
    failures: int = 0  # connection attempts that failed
    down_until: float = 0.0  # loop time before which a refused server is skipped

    def stats(self) -> dict[str, int]:
        return {
            "conns": self.conns,
            "total_conns": self.total_conns,
            "requests": self.requests,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "failures": self.failures,
        }


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


@dataclass(eq=False)
class ServiceStats:
    conns: int = 0  # client connections open now
    total_conns: int = 0
    requests: int = 0
    bytes_in: int = 0  # bytes received from clients
    bytes_out: int = 0  # bytes sent to clients
    errors: int = 0  # error responses generated by the switch (4xx/5xx)


@dataclass(eq=False)
class Service:
    """A virtual service: where it listens, how it schedules, its servers and rules."""

    ident: str
    listen: Address
    scheduler_name: str
    scheduler: Scheduler
    settings: dict[str, Any] = field(default_factory=default_settings)
    redirect: Address | None = None
    servers: list[RealServer] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    running: bool = False
    stats: ServiceStats = field(default_factory=ServiceStats)

    @property
    def speaks_http(self) -> bool:
        """HTTP services parse every request; others relay raw TCP (any protocol)."""
        return bool(self.rules) or self.scheduler.http

    def find_server(self, address: Address) -> RealServer | None:
        for server in self.servers:
            if server.address == address:
                return server
        return None

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
