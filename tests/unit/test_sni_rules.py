"""SNI rules (TLS passthrough) in the table, without sockets: how names match, the default
rule, the config lines and their errors, and what they make of the service."""

from __future__ import annotations

import pytest

from tcpvs.errors import ConfigError, TableError
from tcpvs.table.config import parse_config
from tcpvs.table.listing import render_config, snapshot
from tests.support.tls import CertAuthority

RULES = (
    "Virtual pass {\n    listen = 127.0.0.1:8443\n    scheduler = wlc\n"
    "    server = 127.0.0.1:9001 1\n    server = 127.0.0.1:9002 1\n"
    '    rule = sni "API.example.com" use server 127.0.0.1:9001\n'
    '    rule = sni "*.example.com" use server 127.0.0.1:9002\n'
    '    rule = sni "~^shop[0-9]+\\." use server 127.0.0.1:9001\n'
    '    rule = sni "*" use server 127.0.0.1:9002\n}\n'
)


def test_names_route_to_the_first_matching_rule_else_the_default():
    service = parse_config(RULES, "pass.conf").services["pass"]
    assert not service.speaks_http  # raw TCP: bytes pass as they are
    first, second = service.servers

    def servers(name):
        rule = service.route_sni(name)
        return rule.servers

    assert servers("api.example.com") == [first]  # patterns are lower-cased
    assert servers("www.example.com") == servers("a.b.example.com") == [second]
    assert servers("shop12.example.org") == [first]
    assert servers("example.com") == servers(None) == [second]  # the default rule


def test_sni_rules_list_and_load_back_the_same():
    listed = render_config(snapshot(parse_config(RULES, "pass.conf")))
    assert '    rule = sni "api.example.com" use server 127.0.0.1:9001\n' in listed
    assert '    rule = sni "~^shop[0-9]+\\." use server 127.0.0.1:9001\n' in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('rule = sni "bad name" use server 127.0.0.1:9001', "Invalid sni pattern 'bad name'"),
        ('rule = sni "~(" use server 127.0.0.1:9001', "Invalid sni pattern '~('"),
        ('rule = sni "a.example" server 127.0.0.1:9001', "syntax error, expected 'rule = sni"),
        ('rule = sni "a.example" use server 127.0.0.1:9999', "No such destination"),
    ],
)
def test_a_bad_sni_rule_is_an_error_at_its_line(line, message):
    text = RULES.replace("}\n", f"    {line}\n}}\n")
    with pytest.raises(ConfigError) as error:
        parse_config(text, "pass.conf")
    assert str(error.value).startswith(f"pass.conf:10: {message}")


def test_sni_rules_and_tls_termination_exclude_each_other(tmp_path):
    cert = CertAuthority(tmp_path).issue("site", "site.example")
    table = parse_config(RULES, "pass.conf")
    with pytest.raises(TableError, match="no sni rules"):
        table.edit_service("pass", tls=[str(cert.path)])
    text = RULES.replace("    scheduler = wlc\n", f"    scheduler = wlc\n    tls = {cert.path}\n")
    with pytest.raises(ConfigError, match="pass.conf:7: sni rules pass TLS through"):
        parse_config(text, "pass.conf")


def test_a_server_in_an_sni_rule_is_busy():
    table = parse_config(RULES, "pass.conf")
    with pytest.raises(TableError, match="Destination is busy: used by rules 'api.example.com'"):
        table.delete_server("pass", "127.0.0.1:9001")
    table.delete_sni_rule("pass", "API.example.com", "127.0.0.1:9001")
    table.delete_sni_rule("pass", "~^shop[0-9]+\\.", "127.0.0.1:9001")
    table.delete_server("pass", "127.0.0.1:9001")
