"""Request lines the control socket must refuse with a message, not a traceback: JSON nested
beyond the parser's recursion limit, and rule patterns nested beyond the regex compiler's."""

from __future__ import annotations

import pytest

from tcpvs.control.protocol import BadRequest, decode_request
from tcpvs.errors import ConfigError, TableError
from tcpvs.table.config import parse_config
from tcpvs.table.model import compile_pattern
from tcpvs.table.operations import Table

DEEP = 200_000


@pytest.mark.parametrize(
    "line",
    [
        b"[" * DEEP + b"]" * DEEP,
        b"[" * DEEP,  # never closed: still refused for its depth, not as a parse error
        b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        b'{"op":"flush","args":' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"op":"add_service","args":{"ident":"a","maxclients":' + b"[" * DEEP + b"}}",
    ],
    ids=["arrays", "unclosed", "objects", "in args", "in a setting"],
)
def test_deeply_nested_requests_are_refused(line):
    with pytest.raises(BadRequest) as info:
        decode_request(line + b"\n")
    assert str(info.value) == "request nested too deeply"


def test_moderate_nesting_is_judged_as_usual():
    with pytest.raises(BadRequest) as info:
        decode_request(b'{"op":"flush","args":' + b"[" * 50 + b"]" * 50 + b"}\n")
    assert str(info.value) == "'args' must be an object"


def test_large_numbers_pass_the_protocol_and_are_judged_by_the_table():
    line = b'{"op":"edit_service","args":{"ident":"a","maxclients":1e999,"port":1%s}}' % (
        b"0" * 400
    )
    op, args = decode_request(line)
    assert op == "edit_service" and args["maxclients"] == float("inf")
    table = Table()
    table.add_service("a")
    with pytest.raises(TableError, match="^illegal server port specified$"):
        table.edit_service(**args)
    del args["port"]
    with pytest.raises(TableError, match="maxclients must be between 1 and 1048576"):
        table.edit_service(**args)


NESTED = "(" * 2000 + "a" + ")" * 2000


def test_patterns_nested_too_deeply_are_refused():
    with pytest.raises(ValueError, match="^invalid pattern: groups nested too deeply$"):
        compile_pattern(NESTED)
    table = Table()
    table.add_service("a")
    table.add_server("a", "127.0.0.1:80")
    with pytest.raises(TableError) as info:
        table.add_rule("a", NESTED, "127.0.0.1:80")
    assert str(info.value) == "Invalid pattern: groups nested too deeply"
    assert table.services["a"].rules == []
    rule = f'    rule = pattern "{NESTED}" use server 127.0.0.1:80\n'
    text = f"Virtual a {{\n    server = 127.0.0.1:80\n{rule}}}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "deep.conf")
    assert str(info.value) == "deep.conf:3: Invalid pattern: groups nested too deeply"
