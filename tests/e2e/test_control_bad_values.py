"""Request lines that once made tcpvsd log a Python traceback (a JSON 1e999 is a float inf,
int(inf) raises OverflowError; 200,000 nested brackets make json.loads raise RecursionError):
each gets a clean `{"ok": false, "error": ...}` reply with a clear message, the table is
unchanged, and the daemon's log (workers' included) holds no traceback."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.logs import StderrLog
from tests.support.procs import stop

DEEP = 200_000
BIG = "1" + "0" * 400  # an integer no float can hold
CLIENT = "maxclients must be between 1 and 1048576"
PATTERN = "(" * 2000 + "a" + ")" * 2000  # valid, but nested beyond the regex compiler's reach


def edit(name: str, value: str) -> bytes:
    return b'{"op":"edit_service","args":{"ident":"web","%s":%s}}' % (name.encode(), value.encode())


BAD_LINES = {
    "maxclients 1e999": (edit("maxclients", "1e999"), CLIENT),
    "maxclients -1e999": (edit("maxclients", "-1e999"), CLIENT),
    "maxclients NaN": (edit("maxclients", "NaN"), CLIENT),
    "maxclients huge int": (edit("maxclients", BIG), CLIENT),
    "maxclients 2.5": (edit("maxclients", "2.5"), "maxclients must be a whole number"),
    "maxclients true": (edit("maxclients", "true"), "maxclients must be a number"),
    "max_head_size Infinity": (
        edit("max_head_size", "Infinity"),
        "max_head_size must be between 1024 and 1048576",
    ),
    "startservers -Infinity": (
        edit("startservers", "-Infinity"),
        "startservers must be between 1 and 65535",
    ),
    "connect_timeout huge int": (
        edit("connect_timeout", BIG),
        "connect_timeout must be between 0.001 and 3600",
    ),
    "client_timeout NaN": (edit("client_timeout", "NaN"), "client_timeout must be between"),
    "forwardfor 1e999": (edit("forwardfor", "1e999"), "forwardfor must be on or off"),
    "add_service maxclients 1e999": (
        b'{"op":"add_service","args":{"ident":"new","maxclients":1e999}}',
        CLIENT,
    ),
    "weight huge int": (
        b'{"op":"add_server","args":{"ident":"web","server":"127.0.0.1:9","weight":%s}}'
        % BIG.encode(),
        "illegal weight specified",
    ),
    "port huge int": (
        b'{"op":"edit_service","args":{"ident":"web","port":%s}}' % BIG.encode(),
        "illegal server port specified",
    ),
    "rule nested too deeply": (
        json.dumps(
            {
                "op": "add_rule",
                "args": {"ident": "web", "pattern": PATTERN, "server": "127.0.0.1:8"},
            }
        ).encode(),
        "Invalid pattern: groups nested too deeply",
    ),
    "config rule nested too deeply": (
        json.dumps(
            {
                "op": "load_config",
                "args": {
                    "text": "Virtual web {\n    server = 127.0.0.1:8\n"
                    f'    rule = pattern "{PATTERN}" use server 127.0.0.1:8\n}}\n',
                    "filename": "deep.conf",
                },
            }
        ).encode(),
        "deep.conf:3: Invalid pattern: groups nested too deeply",
    ),
    "nested request": (b"[" * DEEP + b"]" * DEEP, "request nested too deeply"),
    "nested args": (
        b'{"op":"flush","args":' + b"[" * DEEP + b"]" * DEEP + b"}",
        "request nested too deeply",
    ),
}


def ask(path, line: bytes) -> dict:
    """Send one raw request line on the control socket; the reply, decoded."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(line + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, f"tcpvsd closed the connection; so far: {reply!r}"
            reply += chunk
    return json.loads(reply)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_values_get_a_clean_error_and_no_traceback(daemon, workers):
    d = daemon("--workers", workers)
    log = StderrLog(d.proc)
    d.ok("-A", "-i", "web", "-l", "127.0.0.1:9")
    d.ok("-a", "-i", "web", "-r", "127.0.0.1:8")
    before = d.ok("-L", "-n")
    replies = {name: ask(d.socket, line) for name, (line, _) in BAD_LINES.items()}
    for name, (_, message) in BAD_LINES.items():
        reply = replies[name]
        assert reply["ok"] is False and message in reply["error"], (name, reply)
        assert "internal error" not in reply["error"], name
    assert d.ok("-L", "-n") == before  # nothing changed, and the daemon still answers
    assert stop(d.proc) == 0
    stderr = log.text()
    assert "Traceback" not in stderr, stderr[-3000:]
