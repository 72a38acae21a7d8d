"""The control protocol without sockets: request checking, replies, the op whitelist."""

from __future__ import annotations

import inspect
import json

import pytest

from tcpvs.control.protocol import (
    OPS,
    BadRequest,
    decode_reply,
    decode_request,
    default_socket_path,
    encode_error,
    encode_request,
    encode_result,
)
from tcpvs.errors import ControlError
from tcpvs.table.operations import Table


def test_every_switch_operation_is_whitelisted_with_its_own_arguments():
    from tcpvs.switch import Switch

    for op, spec in OPS.items():
        if op == "version":
            continue
        params = inspect.signature(getattr(Switch, op)).parameters
        named = {n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD}
        assert set(spec.required) <= named, op
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            assert set(spec.required) | set(spec.optional) == named, op


def test_request_round_trip_and_nulls_dropped():
    line = encode_request("add_server", {"ident": "web", "server": "127.0.0.1:80", "weight": None})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "op": "add_server",
        "args": {"ident": "web", "server": "127.0.0.1:80"},
    }
    assert decode_request(line) == ("add_server", {"ident": "web", "server": "127.0.0.1:80"})
    assert decode_request(b'{"op": "flush"}\n') == ("flush", {})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json\n", "request is not a JSON object"),
        (b"[1, 2]\n", "request is not a JSON object"),
        (b"\xff\xfe\n", "request is not a JSON object"),
        (b'{"op": "shutdown"}\n', "unknown operation 'shutdown'"),
        (b'{"args": {}}\n', "unknown operation None"),
        (b'{"op": "__init__"}\n', "unknown operation '__init__'"),
        (b'{"op": "flush", "args": []}\n', "'args' must be an object"),
        (b'{"op": "delete_service", "args": {}}\n', "missing argument 'ident' for delete_service"),
        (
            b'{"op": "delete_service", "args": {"ident": "a", "force": true}}\n',
            "unexpected argument 'force' for delete_service",
        ),
        (
            b'{"op": "add_server", "args": {"ident": "a", "server": "x", "weight": "3"}}\n',
            "argument 'weight' must be an integer",
        ),
        (
            b'{"op": "add_server", "args": {"ident": "a", "server": "x", "weight": true}}\n',
            "argument 'weight' must be an integer",
        ),
        (b'{"op": "add_service", "args": {"ident": 5}}\n', "argument 'ident' must be a string"),
        (
            b'{"op": "add_service", "args": {"ident": "a", "connect_timeout": [1]}}\n',
            "argument 'connect_timeout' must be a number, a string or a boolean",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_message(line, message):
    with pytest.raises(BadRequest) as info:
        decode_request(line)
    assert str(info.value) == message


def test_settings_travel_as_json_values():
    line = encode_request("edit_service", {"ident": "a", "forwardfor": False, "connect_timeout": 2})
    assert decode_request(line)[1] == {"ident": "a", "forwardfor": False, "connect_timeout": 2}


def test_replies():
    assert decode_reply(encode_result(None)) is None
    assert decode_reply(encode_result("0.1.0")) == "0.1.0"
    table = Table()
    service = table.add_service("web", listen="127.0.0.1:81", scheduler="wlc")
    server = table.add_server("web", "127.0.0.1:9001", 4)
    assert decode_reply(encode_result(service))["listen"] == {"host": "127.0.0.1", "port": 81}
    assert decode_reply(encode_result(server))["weight"] == 4
    with pytest.raises(ControlError) as info:
        decode_reply(encode_error("No such service"))
    assert str(info.value) == "No such service"
    for bad in (b"", b"garbage\n", b'{"result": 1}\n', b'{"ok": "yes"}\n'):
        with pytest.raises(ControlError, match="tcpvsd sent an invalid reply"):
            decode_reply(bad)


def test_default_socket_path(monkeypatch):
    monkeypatch.delenv("TCPVS_SOCKET", raising=False)
    assert default_socket_path() == "/run/tcpvs/tcpvsd.sock"
    monkeypatch.setenv("TCPVS_SOCKET", "/tmp/x.sock")
    assert default_socket_path() == "/tmp/x.sock"
