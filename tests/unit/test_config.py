"""The KTCPVS config grammar: every keyword, comments, quotes, case, and every error's line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tcpvs.errors import ConfigError
from tcpvs.table.addr import Address
from tcpvs.table.config import parse_config, quotable, tokenize
from tcpvs.table.listing import render_config, snapshot
from tcpvs.table.operations import Table
from tcpvs.table.settings import SETTINGS
from tests.support.limits import default_maxclients

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# [KT] EXAMPLES, verbatim.
KTCPVS_EXAMPLE = """\
Virtual web {
    listen = 0.0.0.0:webcache
    scheduler = hhttp
    startservers = 8
    maxclients = 256
    minspareservers = 6
    maxspareservers = 18
    server = 192.168.0.12:www 1
    server = 192.168.0.11:www 1
    server = 192.168.0.10:www 1
    rule = pattern "/users/([^/]+)/.*" match 1 use server 192.168.0.12:www
    rule = pattern "/users/([^/]+)/.*" match 1 use server 192.168.0.11:www
    rule = pattern "/users/([^/]+)/.*" match 1 use server 192.168.0.10:www
}
"""


def default_settings() -> dict:
    """Every setting's default; maxclients's is computed from this process's open-files limit
    (docs/config.md), the others are fixed."""
    fixed = {s.name: s.default for s in SETTINGS if s.name != "maxclients"}
    return {**fixed, "maxclients": default_maxclients()}


def config_of(text: str) -> dict:
    """The table a config builds, as data without counters and run state."""
    return table_data(parse_config(text, "test.conf"))


def table_data(table: Table) -> dict:
    snap = snapshot(table)
    for svc in snap["services"]:
        del svc["stats"], svc["running"]
        for server in svc["servers"]:
            del server["stats"]
    return snap


def error_of(text: str) -> tuple[int, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.conf")
    err = info.value
    assert str(err) == f"bad.conf:{err.line}: {err.message}"
    return err.line, err.message


def test_ktcpvs_example_with_service_names():
    snap = config_of(KTCPVS_EXAMPLE)
    (web,) = snap["services"]
    assert web["ident"] == "web"
    assert web["listen"] == {"host": "0.0.0.0", "port": 8080}  # webcache
    assert web["scheduler"] == "hhttp"
    assert [(s["host"], s["port"], s["weight"]) for s in web["servers"]] == [
        ("192.168.0.12", 80, 1),
        ("192.168.0.11", 80, 1),
        ("192.168.0.10", 80, 1),
    ]
    (rule,) = web["rules"]  # the same pattern three times: one rule, three servers
    assert rule["pattern"] == "/users/([^/]+)/.*"
    assert rule["match"] == 1
    assert [s["host"] for s in rule["servers"]] == ["192.168.0.12", "192.168.0.11", "192.168.0.10"]


def test_missing_keys_take_the_command_line_defaults():
    (svc,) = config_of("Virtual web {\n}\n")["services"]
    assert svc["listen"] == {"host": "0.0.0.0", "port": 8080}
    assert svc["scheduler"] == "http"
    assert svc["settings"] == default_settings()
    assert svc["redirect"] is None
    assert svc["servers"] == [] and svc["rules"] == []


def test_every_keyword_comments_and_case():
    text = """\
# a comment line
VIRTUAL a {   # a comment after a token
    LISTEN = 127.0.0.1:81
    Scheduler = wlc
    startservers = 2
    MaxClients = 10
    minspareservers = 3
    maxspareservers = 4
    redirect = 127.0.0.1
    connect_timeout = 0.5
    client_timeout = 7
    server_timeout = 8
    keepalive_timeout = 9
    read_timeout = 11
    max_head_size = 2048
    ForwardFor = OFF
    server = 127.0.0.2:8000 3
    server = 127.0.0.3       # weight omitted: 1, port omitted: 80
    server = [::1]:8001 0
    RULE = PATTERN "^/a/" MATCH 0 USE SERVER 127.0.0.2:8000
    rule = pattern ^/b/#not-a-comment use server 127.0.0.3:80
}
virtual b { listen = [::1]:82 }
"""
    a, b = config_of(text)["services"]
    assert a["listen"] == {"host": "127.0.0.1", "port": 81}
    assert a["scheduler"] == "wlc"
    assert a["redirect"] == {"host": "127.0.0.1", "port": 80}
    assert a["settings"] == {
        **default_settings(),
        "startservers": 2,
        "maxclients": 10,
        "minspareservers": 3,
        "maxspareservers": 4,
        "connect_timeout": 0.5,
        "client_timeout": 7.0,
        "server_timeout": 8.0,
        "keepalive_timeout": 9.0,
        "read_timeout": 11.0,
        "max_head_size": 2048,
        "forwardfor": False,
    }
    assert [(s["host"], s["port"], s["weight"]) for s in a["servers"]] == [
        ("127.0.0.2", 8000, 3),
        ("127.0.0.3", 80, 1),
        ("::1", 8001, 0),
    ]
    assert [(r["pattern"], r["match"]) for r in a["rules"]] == [
        ("^/a/", 0),
        ("^/b/#not-a-comment", 0),
    ]
    assert b["listen"] == {"host": "::1", "port": 82}


def test_quoted_patterns_keep_backslashes():
    text = r"""Virtual a {
    server = 127.0.0.1:80 1
    server = 127.0.0.2:80 1
    server = 127.0.0.3:80 1
    rule = pattern "say \"hi\" here" use server 127.0.0.1:80
    rule = pattern "back\\" use server 127.0.0.2:80
    rule = pattern "with space and # hash" use server 127.0.0.3:80
}
"""
    (svc,) = config_of(text)["services"]
    assert [r["pattern"] for r in svc["rules"]] == [
        r"say \"hi\" here",
        "back\\\\",
        "with space and # hash",
    ]


def test_tokens_know_their_lines():
    tokens = tokenize('a\n\n  "b c" # x\n}', "f")
    assert [(t.text, t.line, t.quoted) for t in tokens] == [
        ("a", 1, False),
        ("b c", 3, True),
        ("}", 4, False),
    ]


def test_quotable():
    assert quotable(r"a\"b") and quotable(r"a\\") and quotable("^/x/.*")
    assert not quotable('a"b') and not quotable("a\\") and not quotable("a\nb")


def test_output_of_list_is_accepted_with_its_header():
    text = "TCP Virtual Server version 0.0.18\n" + KTCPVS_EXAMPLE
    assert config_of(text) == config_of(KTCPVS_EXAMPLE)


def test_an_empty_file_is_an_empty_table():
    assert config_of("") == snapshot(Table())
    assert config_of("")["services"] == []
    assert config_of("# nothing\n\n")["services"] == []


RULE_SYNTAX = "syntax error, expected 'rule = pattern \"regex\" [match n] use server host[:port]'"
# (config text, line of the error, message)
ERRORS = [
    ("listen = 1.2.3.4:80\n", 1, "invalid command 'listen' (expected 'Virtual NAME {')"),
    ("\n\nVirtual\n", 3, "unexpected end of file, expected a service name after 'Virtual'"),
    ("Virtual {\n}\n", 1, "missing service name after 'Virtual'"),
    ("Virtual a\nlisten = 1.2.3.4\n}\n", 2, "expected '{' after 'Virtual a'"),
    ("Virtual a {\n    listen = 1.2.3.4\n", 1, "'Virtual a {' is never closed"),
    ("Virtual a {\n}\nVirtual a {\n}\n", 3, "Service already exists"),
    ("Virtual a/b {\n}\n", 1, "illegal ident specified"),
    ("Virtual a {\n}\n}\n", 3, "invalid command '}' (expected 'Virtual NAME {')"),
]
# (lines inside `Virtual a {`, which starts on line 1, line of the error, message)
BLOCK_ERRORS = [
    (["", "bogus = 1"], 3, "unknown key 'bogus'"),
    (["listen=1.2.3.4:80"], 2, "unknown key 'listen=1.2.3.4:80' ('=' must be separated by spaces)"),
    (["listen 1.2.3.4"], 2, "expected '=' after 'listen'"),
    (["listen ="], 2, "syntax error, expected 'listen = host[:port]'"),
    (["listen = 1 2"], 2, "syntax error, expected 'listen = host[:port]'"),
    (
        ["listen = 1.2.3.4:99999"],
        2,
        "illegal listen address '1.2.3.4:99999': port 99999 out of range 1-65535",
    ),
    (
        ["listen = 1.2.3.4:nosuchsvc"],
        2,
        "illegal listen address '1.2.3.4:nosuchsvc': unknown service 'nosuchsvc'",
    ),
    (["listen = 1.2.3.4", "listen = 1.2.3.5"], 3, "'listen' is set twice (first on line 2)"),
    (["scheduler ="], 2, "syntax error, expected 'scheduler = name'"),
    (["", "scheduler = nosuch"], 3, "Scheduler not found"),
    (
        ["startservers = 0"],
        2,
        "illegal startservers '0' (startservers must be between 1 and 65535)",
    ),
    (["maxclients = 1 2"], 2, "syntax error, expected 'maxclients = value'"),
    (
        ["maxclients = many"],
        2,
        "illegal maxclients 'many' (invalid literal for int() with base 10: 'many')",
    ),
    (["forwardfor = maybe"], 2, "illegal forwardfor 'maybe' (forwardfor must be on or off)"),
    (
        ["connect_timeout = 0"],
        2,
        "illegal connect_timeout '0' (connect_timeout must be between 0.001 and 3600)",
    ),
    (["redirect = ::1:80:x"], 2, "illegal redirect address '::1:80:x'"),
    (
        ["server = 1.2.3.4:80 1 2"],
        2,
        "syntax error, expected 'server = host[:port] [weight] [tls [NAME]] [check SPEC]'",
    ),
    (["server = 1.2.3.4:80 65536"], 2, "illegal weight '65536' (0..65535)"),
    (["server = 1.2.3.4:80 -1"], 2, "illegal weight '-1' (0..65535)"),
    (
        ["server = no.such.host.invalid"],
        2,
        "illegal server address 'no.such.host.invalid': cannot resolve host 'no.such.host.invalid'",
    ),
    (["server = 1.2.3.4", "", "server = 1.2.3.4:80"], 4, "Destination already exists"),
    (['rule = pattern "x" use 1.2.3.4'], 2, RULE_SYNTAX),
    (['rule = "x" use server 1.2.3.4'], 2, RULE_SYNTAX),
    (['rule = pattern "(x)" match 11 use server 1.2.3.4'], 2, "illegal match number '11' (0..10)"),
    (['rule = pattern "x" use server 1.2.3.4'], 2, "No such destination"),
    (
        ["server = 1.2.3.4", 'rule = pattern "x" match 1 use server 1.2.3.4'],
        3,
        "pattern has no sub-expression 1",
    ),
    (["server = 1.2.3.4", 'rule = pattern "(" use server 1.2.3.4'], 3, None),
    (["server = 1.2.3.4", 'rule = pattern "" use server 1.2.3.4'], 3, "illegal pattern specified"),
    (
        ["server = 1.2.3.4", *['rule = pattern "x" use server 1.2.3.4'] * 2],
        4,
        "Rule already exists",
    ),
    (['rule = pattern "x use server 1.2.3.4'], 2, "unterminated quoted string"),
    (['rule = pattern "x"y use server 1.2.3.4'], 2, "missing space after quoted string"),
]
ERRORS += [("Virtual a {\n" + "\n".join(lines) + "\n}\n", n, m) for lines, n, m in BLOCK_ERRORS]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_every_error_has_its_exact_line(text, line, message):
    got_line, got_message = error_of(text)
    assert got_line == line
    if message is None:
        assert got_message.startswith("Invalid pattern '('")
    else:
        assert got_message == message


def test_grammar_errors_anywhere_are_found_before_the_table_is_built():
    # Line 2 would be a table error, but the syntax error on line 6 is found first: nothing of
    # a file is applied unless all of it is valid.
    text = "Virtual a {\n  scheduler = nosuch\n}\nVirtual b {\n\n  nonsense = 1\n}\n"
    assert error_of(text) == (6, "unknown key 'nonsense'")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.conf")), ids=lambda p: p.name)
def test_shipped_example_configs_load(path):
    table = parse_config(path.read_text(), str(path))
    assert table.services


# -- the round trip: -L -n output loads back into the same table ------------------------------


def random_table(rng: random.Random) -> Table:
    table = Table()
    for number in range(rng.randint(1, 4)):
        scheduler = rng.choice(["http", "hhttp", "wlc", "rr", "wrr", "lc", "phttp", "chttp"])
        settings = {}
        for spec in SETTINGS:
            if rng.random() < 0.3:
                if spec.kind is bool:
                    settings[spec.name] = rng.random() < 0.5
                elif spec.kind is int:
                    settings[spec.name] = rng.randint(int(spec.low), int(min(spec.high, 100000)))
                else:
                    settings[spec.name] = rng.choice([spec.low, 0.25, 1.5, 7.0, spec.high])
        table.add_service(
            f"svc{number}",
            listen=rng.choice(["127.0.0.1", "0.0.0.0", "[::1]", "10.1.2.3"])
            + f":{rng.randint(1, 65534)}",
            scheduler=scheduler,
            redirect=rng.choice([None, "127.0.0.1:8081", "[::1]:80"]),
            **settings,
        )
        servers = [f"10.0.{number}.{i}:{rng.randint(1, 65535)}" for i in range(rng.randint(0, 6))]
        rng.shuffle(servers)
        for server in servers:
            table.add_server(f"svc{number}", server, rng.randint(0, 65535))
        patterns = ["^/images/", ".*", "^/.*", "/users/([^/]+)/(.*)", r"\.php$", r"a\"b"]
        for server in servers:
            if rng.random() < 0.7:
                pattern = rng.choice(patterns)
                match = rng.randint(0, 2) if "(" in pattern else 0
                try:
                    table.add_rule(f"svc{number}", pattern, server, match)
                except Exception as exc:  # same pattern, other match number: skip that one
                    assert str(exc).startswith("Rule exists with match")
    return table


@pytest.mark.parametrize("seed", range(40))
def test_listing_loads_back_into_the_same_table(seed):
    table = random_table(random.Random(seed))
    text = render_config(snapshot(table), numeric=True)
    rebuilt = parse_config(text, "listing.conf")
    assert table_data(rebuilt) == table_data(table)
    assert render_config(snapshot(rebuilt)) == text  # and it lists the same, byte for byte


def test_round_trip_keeps_server_and_rule_order():
    table = Table()
    table.add_service("web", port=80)
    for i in (3, 1, 2):
        table.add_server("web", f"192.168.10.{i}:80")
    table.add_rule("web", ".*", "192.168.10.3:80")
    table.add_rule("web", "^/cgi-bin/", "192.168.10.1:80")
    table.add_rule("web", "^/images/", "192.168.10.2:80")
    rebuilt = parse_config(render_config(snapshot(table)), "x")
    svc = snapshot(rebuilt)["services"][0]
    assert [s["host"] for s in svc["servers"]] == ["192.168.10.3", "192.168.10.1", "192.168.10.2"]
    assert [r["pattern"] for r in svc["rules"]] == ["^/cgi-bin/", "^/images/", ".*"]
    assert rebuilt.services["web"].listen == Address("0.0.0.0", 80)


def test_docs_list_every_setting_with_its_default():
    from tcpvs.table.listing import format_setting

    doc = (CONFIGS.parent / "docs" / "config.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")
    }
    for spec in SETTINGS:
        assert spec.name in rows, f"docs/config.md does not list {spec.name}"
        if spec.name == "maxclients":  # computed: the docs give the formula
            default = "(open files limit - 64) / 2, within 256..1048576"
        else:
            default = format_setting(spec, spec.default)
        assert f"| {default} |" in rows[spec.name], spec.name
