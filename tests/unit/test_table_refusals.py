"""What the table says when it refuses: two services on one listen address (from tcpvsadm and
from a config file), an address that does not resolve or whose port is out of range, a
server that a rule still uses. Every refusal leaves the table as it was."""

from __future__ import annotations

import pytest

from tcpvs.errors import ConfigError, TableError
from tcpvs.table.addr import Address, listens_overlap
from tcpvs.table.config import parse_config
from tcpvs.table.listing import snapshot
from tcpvs.table.operations import Table

# (first, second, whether the second cannot listen too), as the kernel decides for tcpvs's
# listening sockets (tests/e2e/test_listen_overlap.py binds them for real): a wildcard takes
# its own family only, since tcpvs listens on IPv6 with IPV6_V6ONLY.
OVERLAPS = [
    ("127.0.0.1:8080", "127.0.0.1:8080", True),
    ("0.0.0.0:8080", "127.0.0.1:8080", True),
    ("127.0.0.1:8080", "0.0.0.0:8080", True),
    ("0.0.0.0:8080", "0.0.0.0:8080", True),
    ("[::]:8080", "[::1]:8080", True),
    ("[::1]:8080", "[::]:8080", True),
    ("[::]:8080", "[::]:8080", True),
    ("127.0.0.1:8080", "127.0.0.2:8080", False),
    ("127.0.0.1:8080", "127.0.0.1:8081", False),
    ("0.0.0.0:8080", "0.0.0.0:8081", False),
    ("[::]:8080", "0.0.0.0:8080", False),
    ("[::]:8080", "127.0.0.1:8080", False),
    ("[::1]:8080", "127.0.0.1:8080", False),
]


def address(text: str) -> Address:
    host, port = text.rsplit(":", 1)
    return Address(host.strip("[]"), int(port))


@pytest.mark.parametrize(("first", "second", "overlap"), OVERLAPS)
def test_which_listen_addresses_overlap(first, second, overlap):
    assert listens_overlap(address(first), address(second)) is overlap


def test_a_service_cannot_be_added_or_moved_onto_another_ones_address():
    table = Table()
    table.add_service("a", listen="127.0.0.1:8080")
    table.add_service("b", listen="127.0.0.1:8081")
    table.add_service("v6", listen="[::]:8080")  # IPv6 only: no conflict with IPv4
    before = snapshot(table)
    for op, ident, listen, message in [
        ("add", "c", "127.0.0.1:8080", "service c listens on 127.0.0.1:8080 like service a"),
        (
            "add",
            "c",
            "0.0.0.0:8080",
            "service c listens on 0.0.0.0:8080 like service a on 127.0.0.1:8080",
        ),
        ("add", "c", "[::1]:8080", "service c listens on [::1]:8080 like service v6 on [::]:8080"),
        ("edit", "b", "127.0.0.1:8080", "service b listens on 127.0.0.1:8080 like service a"),
    ]:
        method = table.add_service if op == "add" else table.edit_service
        with pytest.raises(TableError) as info:
            method(ident, listen=listen)
        assert str(info.value) == message
    with pytest.raises(TableError) as info:
        table.edit_service("b", port=8080)  # -P alone: the host stays 127.0.0.1
    assert str(info.value) == "service b listens on 127.0.0.1:8080 like service a"
    assert snapshot(table) == before
    table.edit_service("a", listen="127.0.0.1:8080", scheduler="rr")  # its own address: fine


def test_a_config_with_two_services_on_one_address_names_both_lines():
    text = (
        "Virtual a {\n"
        "    scheduler = wlc\n"
        "    listen = 127.0.0.1:8080\n"
        "}\n"
        "Virtual b {\n"
        "    listen = 127.0.0.1:8080\n"
        "}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "two.conf")
    assert (
        str(info.value) == "two.conf:6: service b listens on 127.0.0.1:8080 like service a (line 3)"
    )
    # Without a listen line a service listens on the default 0.0.0.0:8080, stated where its
    # block starts.
    with pytest.raises(ConfigError) as info:
        parse_config("Virtual a {\n}\n\nVirtual b {\n    scheduler = rr\n}\n", "default.conf")
    assert str(info.value) == (
        "default.conf:4: service b listens on 0.0.0.0:8080 like service a (line 1)"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text.replace("    listen = 127.0.0.1:8080\n}\n", "}\n", 1), "wild.conf")
    assert str(info.value) == (
        "wild.conf:5: service b listens on 127.0.0.1:8080 like service a on 0.0.0.0:8080 (line 1)"
    )


def test_addresses_say_why_they_are_illegal():
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080")
    before = snapshot(table)
    for call, message in [
        (
            lambda: table.add_server("web", "127.0.0.1:70000"),
            "illegal address:port specified: port 70000 out of range 1-65535",
        ),
        (
            lambda: table.add_server("web", "127.0.0.1:nosuchservice"),
            "illegal address:port specified: unknown service 'nosuchservice'",
        ),
        (
            lambda: table.edit_service("web", listen="127.0.0.1:0"),
            "illegal address:port specified: port 0 out of range 1-65535",
        ),
        # a name that is not a valid host name at all: refused before any lookup
        (
            lambda: table.add_server("web", "bad..name:80"),
            "illegal address:port specified: cannot resolve host 'bad..name'",
        ),
        (lambda: table.add_server("web", "[::1"), "illegal address:port specified"),
    ]:
        with pytest.raises(TableError) as info:
            call()
        assert str(info.value) == message
    assert snapshot(table) == before


def test_a_busy_destination_names_the_rules_that_use_it():
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080")
    table.add_server("web", "127.0.0.1:9001")
    table.add_server("web", "127.0.0.1:9002")
    table.add_rule("web", "/images/.*", "127.0.0.1:9001")
    with pytest.raises(TableError) as info:
        table.delete_server("web", "127.0.0.1:9001")
    assert str(info.value) == "Destination is busy: used by rule '/images/.*' of service web"
    table.add_rule("web", "^/b/", "127.0.0.1:9002")
    table.add_rule("web", "^/a/", "127.0.0.1:9002")
    before = snapshot(table)
    with pytest.raises(TableError) as info:
        table.delete_server("web", "127.0.0.1:9002")
    assert str(info.value) == "Destination is busy: used by rules '^/b/', '^/a/' of service web"
    assert snapshot(table) == before
