"""The control-socket protocol: one JSON object per line each way, and the whitelist of
operations (the Switch coroutines, plus `snapshot` and `version`) with their arguments. No I/O.

    request:  {"op": "<name>", "args": {...}}
    reply:    {"ok": true, "result": <JSON or null>}  |  {"ok": false, "error": "<message>"}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from tcpvs.errors import ControlError, TcpvsError
from tcpvs.table.listing import rule_snapshot, server_snapshot, service_snapshot
from tcpvs.table.model import RealServer, Rule, Service, SniRule
from tcpvs.table.settings import SETTINGS

DEFAULT_SOCKET = "/run/tcpvs/tcpvsd.sock"
# A request line carries at most a config file; bigger lines are refused, not buffered.
MAX_LINE = 4 * 1024 * 1024
PERMISSION_DENIED = "Permission denied (you must be root or the tcpvsd user)"


def default_socket_path() -> str:
    """$TCPVS_SOCKET, else /run/tcpvs/tcpvsd.sock."""
    return os.environ.get("TCPVS_SOCKET") or DEFAULT_SOCKET


class BadRequest(TcpvsError, ValueError):
    """A request line that is not a valid request; str() is the reply's error message.

    Also a ValueError, as which the control server catches it.
    """


@dataclass(frozen=True)
class Op:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


_SETTINGS = tuple(s.name for s in SETTINGS)
_SERVICE_OPTIONS = (
    "listen",
    "port",
    "scheduler",
    "redirect",
    "check",
    "tls",
    "tls_min",
    "tls_ca",
    "tls_verify",
    *_SETTINGS,
)
OPS: dict[str, Op] = {
    "add_service": Op(("ident",), _SERVICE_OPTIONS),
    "edit_service": Op(("ident",), _SERVICE_OPTIONS),
    "delete_service": Op(("ident",)),
    "flush": Op(),
    "add_server": Op(("ident", "server"), ("weight", "check", "tls")),
    "edit_server": Op(("ident", "server"), ("weight", "state", "check", "tls")),
    "set_health": Op(("ident", "server", "health")),
    "delete_server": Op(("ident", "server")),
    "add_rule": Op(("ident", "pattern", "server"), ("match",)),
    "delete_rule": Op(("ident", "pattern", "server")),
    "add_sni_rule": Op(("ident", "pattern", "server")),
    "delete_sni_rule": Op(("ident", "pattern", "server")),
    "start": Op((), ("ident",)),
    "stop": Op((), ("ident",)),
    "load_config": Op(("text",), ("filename",)),
    "snapshot": Op((), ("ident",)),
    "version": Op(),
}
_INTEGERS = frozenset({"port", "weight", "match"})
_LISTS = frozenset({"tls"})  # certificate files
_BOOLEANS = frozenset({"tls_verify"})


def _check_type(name: str, value: Any) -> None:
    if name in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "an integer"
    elif name in _BOOLEANS:
        ok = isinstance(value, bool)
        expected = "true or false"
    elif name in _LISTS:  # (a server's `tls` is a name, on or off: the table says which)
        listed = isinstance(value, list) and all(isinstance(item, str) for item in value)
        ok = listed or isinstance(value, str)
        expected = "a list of strings or a string"
    elif name in _SETTINGS:  # a per-service setting: the table converts and checks it
        ok = isinstance(value, int | float | str)
        expected = "a number, a string or a boolean"
    else:
        ok = isinstance(value, str)
        expected = "a string"
    if not ok:
        raise BadRequest(f"argument '{name}' must be {expected}")


def _check_op(op: object) -> str:
    """`op` itself if it names an operation; BadRequest otherwise."""
    if not isinstance(op, str) or op not in OPS:
        raise BadRequest(f"unknown operation {op!r}")
    return op


def check_request(op: Any, args: Any) -> dict[str, Any]:
    """The request's arguments, with null ones dropped; BadRequest if the request is invalid."""
    spec = OPS[_check_op(op)]
    if not isinstance(args, dict):
        raise BadRequest("'args' must be an object")
    checked = {name: value for name, value in args.items() if value is not None}
    for name, value in checked.items():
        if name not in spec.required and name not in spec.optional:
            raise BadRequest(f"unexpected argument '{name}' for {op}")
        _check_type(name, value)
    for name in spec.required:
        if name not in checked:
            raise BadRequest(f"missing argument '{name}' for {op}")
    return checked


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def encode_request(op: str, args: dict[str, Any]) -> bytes:
    return _line({"op": op, "args": check_request(op, args)})


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """(op, args) of one request line; BadRequest if it is not a valid request."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("request is not a JSON object") from None
    except RecursionError:  # json's parser recurses once per nested array or object
        raise BadRequest("request nested too deeply") from None
    if not isinstance(message, dict):
        raise BadRequest("request is not a JSON object")
    op = _check_op(message.get("op"))
    return op, check_request(op, message.get("args", {}))


def result_to_json(result: Any) -> Any:
    """What a Switch method returned, as JSON-ready data."""
    if isinstance(result, Service):
        return service_snapshot(result)
    if isinstance(result, RealServer):
        return server_snapshot(result)
    if isinstance(result, Rule):
        return rule_snapshot(result)
    if isinstance(result, SniRule):
        return {"pattern": result.pattern, "servers": len(result.servers)}
    return result


def encode_result(result: Any) -> bytes:
    return _line({"ok": True, "result": result_to_json(result)})


def encode_error(message: str) -> bytes:
    return _line({"ok": False, "error": message})


def decode_reply(line: bytes) -> Any:
    """The result of a reply line; ControlError with the daemon's message for an error reply."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("ok"), bool):
        raise ControlError("tcpvsd sent an invalid reply")
    if not message["ok"]:
        raise ControlError(str(message.get("error") or "tcpvsd refused the request"))
    return message.get("result")
