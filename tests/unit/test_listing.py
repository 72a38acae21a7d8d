"""The `-L` layout (byte-exact against KTCPVS's), `--stats` and `--json` renderings."""

from __future__ import annotations

import json

import pytest

from tcpvs import __version__
from tcpvs.exchange.base import observe
from tcpvs.table.config import parse_config
from tcpvs.table.counters import CAUSES, LATENCY_BOUNDS
from tcpvs.table.listing import merge_snapshots, render_config, render_json, snapshot
from tcpvs.table.operations import Table
from tests.support.limits import default_maxclients


def man_page_table() -> Table:
    """The man page's commands (spec A.4): -A -i web -s http -P 80, three servers, three rules."""
    table = Table()
    table.add_service("web", scheduler="http", port=80)
    for i in (1, 2, 3):
        table.add_server("web", f"192.168.10.{i}:80")
    table.add_rule("web", "^/cgi-bin/", "192.168.10.1:80")
    table.add_rule("web", "^/images/", "192.168.10.2:80")
    table.add_rule("web", ".*", "192.168.10.3:80")
    return table


def man_page_listing() -> str:
    """Spec A.4's example, in creation order (KTCPVS printed servers and rules reversed);
    maxclients is the default this process's open-files limit gives (docs/config.md)."""
    return f"""\
TCP Virtual Server version {__version__}
Virtual web {{
    listen = 0.0.0.0:80
    scheduler = http
    startservers = 8
    maxclients = {default_maxclients()}
    minspareservers = 6
    maxspareservers = 18
    server = 192.168.10.1:80 1
    server = 192.168.10.2:80 1
    server = 192.168.10.3:80 1
    rule = pattern "^/cgi-bin/" use server 192.168.10.1:80
    rule = pattern "^/images/" use server 192.168.10.2:80
    rule = pattern ".*" use server 192.168.10.3:80
}}
"""


def test_list_numeric_is_ktcpvs_layout_byte_for_byte():
    assert render_config(snapshot(man_page_table()), numeric=True) == man_page_listing()


def test_one_service_has_no_header():
    table = man_page_table()
    text = render_config(snapshot(table, "web"), header=False)
    assert text == man_page_listing().split("\n", 1)[1]


def test_empty_table_lists_only_the_header():
    assert render_config(snapshot(Table())) == f"TCP Virtual Server version {__version__}\n"


def test_hhttp_prints_match_for_every_rule_and_redirect_when_set():
    table = Table()
    table.add_service("web", listen="127.0.0.1:8080", scheduler="hhttp", redirect="127.0.0.1:80")
    table.add_server("web", "127.0.0.1:9001", 5)
    table.add_server("web", "127.0.0.1:9002", 0)
    table.add_rule("web", "/users/([^/]+)/.*", "127.0.0.1:9001", 1)
    table.add_rule("web", "/users/([^/]+)/.*", "127.0.0.1:9002", 1)
    table.add_rule("web", "^/static/", "127.0.0.1:9002")
    assert render_config(snapshot(table), header=False) == (
        "Virtual web {\n"
        "    listen = 127.0.0.1:8080\n"
        "    scheduler = hhttp\n"
        "    startservers = 8\n"
        f"    maxclients = {default_maxclients()}\n"
        "    minspareservers = 6\n"
        "    maxspareservers = 18\n"
        "    redirect = 127.0.0.1:80\n"
        "    server = 127.0.0.1:9001 5\n"
        "    server = 127.0.0.1:9002 0\n"
        '    rule = pattern "/users/([^/]+)/.*" match 1 use server 127.0.0.1:9001\n'
        '    rule = pattern "/users/([^/]+)/.*" match 1 use server 127.0.0.1:9002\n'
        '    rule = pattern "^/static/" match 0 use server 127.0.0.1:9002\n'
        "}\n"
    )


def test_non_classic_settings_only_when_not_default_and_match_kept_for_any_scheduler():
    table = Table()
    table.add_service("a", listen="[::1]:81", scheduler="wlc", connect_timeout=0.25,
                      forwardfor=False, maxclients=1000, keepalive_timeout=30)  # fmt: skip
    table.add_server("a", "[::1]:9001")
    table.add_rule("a", "/u/(.*)", "[::1]:9001", 1)
    text = render_config(snapshot(table), header=False)
    assert text == (
        "Virtual a {\n"
        "    listen = [::1]:81\n"
        "    scheduler = wlc\n"
        "    startservers = 8\n"
        "    maxclients = 1000\n"
        "    minspareservers = 6\n"
        "    maxspareservers = 18\n"
        "    connect_timeout = 0.25\n"
        "    forwardfor = off\n"
        "    server = [::1]:9001 1\n"
        '    rule = pattern "/u/(.*)" match 1 use server [::1]:9001\n'
        "}\n"
    )


def test_names_when_not_numeric():
    table = Table()
    table.add_service("web", listen="127.0.0.1:80")
    table.add_server("web", "127.0.0.1:8080")
    text = render_config(snapshot(table), numeric=False, header=False)
    # Names come from the resolver and /etc/services; either the name or the number is shown.
    listen = text.splitlines()[1]
    assert listen in ("    listen = localhost:http", "    listen = 127.0.0.1:http") or (
        listen.startswith("    listen = ") and listen.endswith(":http")
    )
    assert parse_config(text, "names.conf").services["web"].servers[0].address.port == 8080


def test_stats_are_comments_that_keep_the_listing_loadable():
    table = man_page_table()
    service = table.services["web"]
    service.stats.conns, service.stats.total_conns, service.stats.requests = 2, 15, 40
    service.stats.bytes_in, service.stats.bytes_out, service.stats.errors = 1234, 5678, 3
    server = service.servers[1]
    server.conns, server.total_conns, server.requests = 1, 7, 20
    server.bytes_in, server.bytes_out, server.failures = 600, 3000, 1
    text = render_config(snapshot(table), stats=True)
    lines = text.splitlines()
    assert lines[2] == (
        "    # stopped: connections 2 active / 15 total, requests 40, bytes in 1234 / out 5678,"
        " errors 3"
    )
    assert lines[10] == (
        "    server = 192.168.10.2:80 1  # up: connections 1 active / 7 total, requests 20,"
        " bytes in 600 / out 3000, failures 1"
    )
    without_comments = [line.split("  #")[0] for line in lines if not line.startswith("    #")]
    assert without_comments == man_page_listing().splitlines()
    fresh = snapshot(man_page_table())["services"][0]["servers"]
    assert snapshot(parse_config(text, "stats.conf"))["services"][0]["servers"] == fresh


def test_json_is_the_whole_snapshot():
    table = man_page_table()
    table.services["web"].servers[0].requests = 9
    data = json.loads(render_json(snapshot(table)))
    assert data == snapshot(table)
    assert data["version"] == __version__
    assert data["services"][0]["servers"][0]["stats"]["requests"] == 9
    assert data["services"][0]["rules"][2] == {
        "pattern": ".*",
        "match": 0,
        "servers": [{"host": "192.168.10.3", "port": 80}],
    }


def _counted(requests: int, failures: int) -> dict:
    """The man page's table with every counter of the service and its servers set."""
    table = man_page_table()
    service = table.services["web"]
    service.stats.conns, service.stats.total_conns, service.stats.requests = 1, 2, requests
    service.stats.bytes_in, service.stats.bytes_out, service.stats.errors = 10, 20, 3
    service.stats.responses[1], service.stats.causes[CAUSES.index("refused")] = requests, failures
    for i, server in enumerate(service.servers):
        server.conns, server.total_conns, server.requests = i, i + 1, requests + i
        server.bytes_in, server.bytes_out, server.failures = 100 * i, 200 * i, failures
        server.retries, server.responses[4] = failures, i
        service.budget.denied = failures
        for _ in range(requests):
            observe(server.duration, 0.003)  # the 0.005 bucket (index 3)
    return snapshot(table)


def test_merge_snapshots_sums_every_counter_and_keeps_the_table():
    a, b = _counted(40, 1), _counted(2, 5)
    merged = merge_snapshots([a, b])
    svc = merged["services"][0]
    no_causes = dict.fromkeys(CAUSES[1:], 0)
    assert svc["stats"] == {
        "conns": 2,
        "total_conns": 4,
        "requests": 42,
        "bytes_in": 20,
        "bytes_out": 40,
        "errors": 6,
        "retries": 0,
        "responses": {"1xx": 0, "2xx": 42, "3xx": 0, "4xx": 0, "5xx": 0},
        "retries_denied": 6,
        "causes": {**no_causes, "refused": 6},
    }
    empty = {"buckets": [0] * (len(LATENCY_BOUNDS) + 1), "sum": 0.0}
    assert [s["stats"] for s in svc["servers"]] == [
        {
            "conns": 2 * i,
            "total_conns": 2 * (i + 1),
            "requests": 42 + 2 * i,
            "bytes_in": 200 * i,
            "bytes_out": 400 * i,
            "failures": 6,
            "retries": 6,
            "responses": {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 2 * i},
            "first_byte": empty,
            "duration": {
                "buckets": [0, 0, 0, 42] + [0] * (len(LATENCY_BOUNDS) - 3),
                "sum": pytest.approx(42 * 0.003),
            },
        }
        for i in range(3)
    ]
    assert render_config(merged) == man_page_listing()  # the table itself is the first's
    assert a == _counted(40, 1) and b == _counted(2, 5)  # the inputs are not modified


def test_merge_snapshots_of_one_is_that_snapshot_and_unmatched_entries_are_ignored():
    a = _counted(7, 0)
    assert merge_snapshots([a]) == a
    other = _counted(5, 0)
    other["services"][0]["servers"][0]["port"] = 81  # a server the first worker lacks
    other["services"].append({**other["services"][0], "ident": "extra"})
    merged = merge_snapshots([a, other])
    assert [s["ident"] for s in merged["services"]] == ["web"]
    servers = merged["services"][0]["servers"]
    assert servers[0]["stats"]["requests"] == 7  # not matched: only the first's count
    assert servers[1]["stats"]["requests"] == 8 + 6
