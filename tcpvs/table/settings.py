"""Per-service settings: one typed, read-only Settings object per service, and the rules of
each setting (type, range, default, whether KTCPVS had it) read from its declaration.

An edit makes a new Settings (Settings.replace); the engine reads plain attributes on every
request. The maxclients default reads the open-files limit, when a service is made.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

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
    limit tcpvsd raised at start (tcpvsd.raise_nofile_limit) counts."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return MAX_MAXCLIENTS if soft == resource.RLIM_INFINITY else maxclients_for(soft)


def _setting(default: Any, low: float, high: float, help: str = "", classic: bool = False) -> Any:
    """A Settings field: its default (or a function giving it), range and description.
    `classic` settings are KTCPVS's, always printed by `-L`; the others only when they differ
    from their default, so the original layout stays unchanged."""
    rules = {"low": low, "high": high, "classic": classic, "help": help}
    if callable(default):
        return field(default_factory=default, metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings of one service (read-only: edits make a new object)."""

    startservers: int = _setting(8, 1, 65535, "accepted for compatibility (see docs)", True)
    maxclients: int = _setting(
        default_maxclients, 1, MAX_MAXCLIENTS, "concurrent client connections", True
    )
    minspareservers: int = _setting(6, 1, 65535, "accepted for compatibility", True)
    maxspareservers: int = _setting(18, 1, 65535, "accepted for compatibility", True)
    connect_timeout: float = _setting(5.0, 0.001, 3600, "seconds to connect to a server")
    client_timeout: float = _setting(10.0, 0.001, 3600, "seconds to receive a request head")
    server_timeout: float = _setting(60.0, 0.001, 86400, "seconds to wait for a response")
    keepalive_timeout: float = _setting(30.0, 0.001, 86400, "idle keep-alive seconds")
    read_timeout: float = _setting(180.0, 0.001, 86400, "idle seconds of a raw/tunnel relay")
    fail_timeout: float = _setting(10.0, 0, 3600, "seconds a refusing server is skipped")
    max_head_size: int = _setting(16384, 1024, 1048576, "largest request head (else 431)")
    forwardfor: bool = _setting(True, 0, 1, "add X-Forwarded-For to HTTP requests")
    access_log: bool = _setting(False, 0, 1, "log every request (tcpvsd --access-log: where)")
    eject_5xx: int = _setting(0, 0, 1000, "consecutive 5xx answers that eject a server (0: off)")
    eject_failures: int = _setting(
        0, 0, 1000, "consecutive failed connections that eject a server (0: off)"
    )
    eject_time: float = _setting(30.0, 0.1, 3600, "seconds of a first ejection (doubled each time)")
    retries: int = _setting(2, 0, 100, "times a failed request is sent again (to other servers)")
    retry_budget: float = _setting(20.0, 0, 100, "retries as a share of requests, per cent")
    slowstart: float = _setting(0.0, 0, 3600, "seconds a server back up ramps to its weight")

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` (values already checked with check_setting)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in SETTINGS}


@dataclass(frozen=True)
class Setting:
    """The rules of one setting, as declared in Settings."""

    name: str
    kind: type  # int, float or bool
    default: Any | Callable[[], Any]  # a value, or a function giving it when a service is made
    low: float
    high: float
    classic: bool
    help: str

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


_KINDS = {"int": int, "float": float, "bool": bool}
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(
        f.name,
        _KINDS[str(f.type)],
        f.default_factory if callable(f.default_factory) else f.default,
        **f.metadata,
    )
    for f in fields(Settings)
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
_SWITCH_WORDS = {"on": True, "yes": True, "true": True, "1": True}
_SWITCH_WORDS |= {"off": False, "no": False, "false": False, "0": False}


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
