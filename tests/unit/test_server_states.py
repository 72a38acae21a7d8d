"""Server states and the check line in the table, without sockets: what `--state` and the
checks make of a server, what schedulers then see, how `check = ...` reads, lists and fails."""

from __future__ import annotations

import math

import pytest

from tcpvs.errors import ConfigError, TableError
from tcpvs.exchange.base import eligible
from tcpvs.health.spec import parse_check
from tcpvs.table.config import parse_config
from tcpvs.table.listing import render_config, snapshot
from tcpvs.table.operations import Table

CHECK = "http GET /healthz expect 200-399 interval 2 timeout 1 rise 2 fall 3"


def two_servers() -> Table:
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080")
    table.add_server("web", "127.0.0.1:9001", 3)
    table.add_server("web", "127.0.0.1:9002")
    return table


def test_drain_and_maint_take_a_server_out_and_ready_brings_it_back():
    table = two_servers()
    first, second = table.services["web"].servers
    table.edit_server("web", "127.0.0.1:9001", state="drain")
    assert (first.state, first.admin, first.weight, first.down_until) == (
        "drain",
        "drain",
        3,
        math.inf,
    )
    assert first.since > 0
    assert list(eligible([first, second], [], 0.0)) == [second]
    table.edit_server("web", "127.0.0.1:9001", state="maint")
    assert first.state == "maint"
    table.edit_server("web", "127.0.0.1:9001", state="ready")
    assert (first.state, first.down_until) == ("up", 0.0)
    assert list(eligible([first, second], [], 0.0)) == [first, second]


def test_a_server_down_by_its_checks_stays_drained_when_an_operator_says_so():
    table = two_servers()
    first = table.services["web"].servers[0]
    first.health = "down"
    assert first.update_state(1.0) and first.state == "down"
    table.edit_server("web", "127.0.0.1:9001", state="drain")
    first.health = "up"
    assert not first.update_state(2.0) and first.state == "drain"  # the operator's say stands
    table.edit_server("web", "127.0.0.1:9001", state="ready")
    assert first.state == "up"


def test_edit_server_keeps_ktcpvs_weight_rule_unless_a_state_is_given():
    table = two_servers()
    first = table.services["web"].servers[0]
    table.edit_server("web", "127.0.0.1:9001", state="drain")
    assert first.weight == 3  # --state alone leaves the weight
    table.edit_server("web", "127.0.0.1:9001")
    assert first.weight == 1  # KTCPVS: -e without -w sets weight 1
    with pytest.raises(TableError, match=r"illegal state 'off' \(ready, drain or maint\)"):
        table.edit_server("web", "127.0.0.1:9001", state="off")


def test_the_check_line_loads_lists_and_reloads_the_same():
    text = (
        "Virtual web {\n    listen = 127.0.0.1:8080\n    scheduler = http\n"
        "    check = HTTP get /healthz Expect 200-399 rise 2\n"
        "    server = 127.0.0.1:9001 1\n}\n"
    )
    table = parse_config(text, "h.conf")
    assert table.services["web"].check == parse_check(CHECK)
    listed = render_config(snapshot(table))
    assert f"    check = {CHECK}\n" in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed
    assert "check" not in render_config(snapshot(two_servers()))  # KTCPVS's layout untouched


def test_a_check_set_and_removed_at_run_time():
    table = two_servers()
    table.edit_service("web", check="tcp interval 1 timeout 0.5")
    assert table.services["web"].check == parse_check("tcp interval 1 timeout 0.5 rise 2 fall 3")
    table.edit_service("web", check="none")
    assert table.services["web"].check is None
    with pytest.raises(TableError, match="illegal check 'tcp rise 0'"):
        table.edit_service("web", check="tcp rise 0")


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("http GET / intervall 2", "unknown keyword 'intervall'"),
        ("tcp rise 0", "rise"),
        ("http GET / interval 1 timeout 2", "timeout"),
        ('http GET / body "("', "body"),
        ("udp", "udp"),
    ],
)
def test_a_bad_check_is_an_error_at_its_line(check, message):
    text = f"Virtual web {{\n    listen = 127.0.0.1:8080\n\n    check = {check}\n}}\n"
    with pytest.raises(ConfigError) as error:
        parse_config(text, "bad.conf")
    assert str(error.value).startswith("bad.conf:4: ") and message in str(error.value)


@pytest.mark.parametrize(
    ("check", "message"),
    [("http GET / intervall 2", "unknown keyword 'intervall'"), ("tcp rise 0", "rise"), ("", "")],
)
def test_a_bad_server_check_is_an_error_at_its_line(check, message):
    text = (
        "Virtual web {\n    listen = 127.0.0.1:8080\n    check = tcp\n"
        f"    server = 127.0.0.1:9001 2 check {check}\n}}\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, "bad.conf")
    assert str(error.value).startswith("bad.conf:4: ") and message in str(error.value)


OWN_CHECKS = (
    "Virtual web {\n    listen = 127.0.0.1:8080\n    scheduler = http\n"
    "    check = tcp interval 2 timeout 1 rise 2 fall 3\n"
    "    server = 127.0.0.1:9001 3 CHECK http GET /alive interval 1 timeout 0.5\n"
    "    server = 127.0.0.1:9002 check none\n"
    "    server = 127.0.0.1:9003\n}\n"
)


def test_a_server_check_overrides_its_services_and_round_trips_through_the_listing():
    table = parse_config(OWN_CHECKS, "own.conf")
    service = table.services["web"]
    alive, unchecked, plain = service.servers
    assert service.check_of(alive) == parse_check("http GET /alive interval 1 timeout 0.5")
    assert (alive.configured, unchecked.configured) == (3, 1)
    assert service.check_of(unchecked) is None
    assert service.check_of(plain) == service.check
    listed = render_config(snapshot(table))
    assert (
        "    server = 127.0.0.1:9001 3 check http GET /alive expect 200-399 interval 1"
        " timeout 0.5 rise 2 fall 3\n"
    ) in listed
    assert "    server = 127.0.0.1:9002 1 check none\n" in listed
    assert "    server = 127.0.0.1:9003 1\n" in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed


def test_a_server_check_set_at_run_time_keeps_the_weight_and_default_hands_it_back():
    table = parse_config(OWN_CHECKS, "own.conf")
    service = table.services["web"]
    plain = service.servers[2]
    table.edit_server("web", "127.0.0.1:9003", weight=5)
    table.edit_server("web", "127.0.0.1:9003", check="tcp port 9100")
    assert service.check_of(plain) == parse_check("tcp port 9100") and plain.configured == 5
    table.edit_server("web", "127.0.0.1:9003", check="default")
    assert service.check_of(plain) == service.check
    with pytest.raises(TableError, match="illegal check 'tcp fall 0'"):
        table.edit_server("web", "127.0.0.1:9003", check="tcp fall 0")
    assert service.check_of(plain) == service.check  # unchanged
    added = table.add_server("web", "127.0.0.1:9004", 2, check="none")
    assert added.own_check and service.check_of(added) is None
