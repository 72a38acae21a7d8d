"""A TLS service's certificates without sockets: loading (and every way a file can be
unusable), which certificate a server name gets, and the `tls` lines of a config file."""

from __future__ import annotations

import ssl

import pytest

from tcpvs.errors import ConfigError, TableError
from tcpvs.table.config import parse_config
from tcpvs.table.listing import render_config, snapshot
from tcpvs.table.operations import Table
from tcpvs.tls.certs import CertificateError, CertStore, load_certificate
from tests.support.tls import CertAuthority


@pytest.fixture
def ca(tmp_path):
    return CertAuthority(tmp_path)


def test_names_come_from_the_certificate_and_sni_chooses_wildcards_by_one_label(ca):
    site = load_certificate(str(ca.issue("site", "site.example", "*.site.example").path))
    api = load_certificate(str(ca.issue("api", "API.example.").path))
    assert site.names == ("site.example", "*.site.example") and api.names == ("api.example",)
    store = CertStore([site, api])
    assert store.choose("www.site.example") is site
    assert store.choose("api.example") is api and store.choose("API.Example.") is api
    for default in (None, "site.example.org", "a.b.site.example", "other", ".site.example"):
        assert store.choose(default) is site, default


def test_the_fingerprint_is_the_leafs(ca):
    issued = ca.issue("site", "site.example")
    assert load_certificate(str(issued.path)).fingerprint == issued.fingerprint


def test_tls_min_is_set_on_every_certificates_context(ca):
    cert = load_certificate(str(ca.issue("site", "site.example").path))
    CertStore([cert], "1.3")
    assert cert.context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_unusable_files_say_why(ca, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    only_cert = tmp_path / "cert-only.pem"
    only_cert.write_bytes(ca.ca.cert_pem.bytes())
    cases = {
        "site.pem": "the path must be absolute",
        str(tmp_path / "missing.pem"): "cannot read",
        str(garbage): "no PEM certificate in it",
        str(only_cert): "no private key in it",
        str(ca.mismatched("mismatched")): "the private key does not match the certificate",
    }
    for path, reason in cases.items():
        with pytest.raises(CertificateError, match=reason):
            load_certificate(path)


def config(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"Virtual s {{\n    listen = 127.0.0.1:8443\n{body}    server = 127.0.0.1:9001 1\n}}\n"


def test_tls_lines_load_list_and_load_back_the_same(ca):
    one, two = ca.issue("one", "one.example"), ca.issue("two", "two.example")
    text = config(f"tls = {one.path}", f"tls = {two.path}", "tls_min = 1.3")
    table = parse_config(text, "tls.conf")
    certs = table.services["s"].certs
    assert certs is not None and certs.paths == (str(one.path), str(two.path))
    listed = render_config(snapshot(table))
    assert f"    tls = {one.path}\n    tls = {two.path}\n    tls_min = 1.3\n" in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed
    assert "tls" not in render_config(snapshot(parse_config(config(), "plain.conf")))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("tls = /nonexistent/site.pem", "tls.conf:4: tls: cannot read /nonexistent/site.pem"),
        ("tls_min = 1.1", "tls.conf:4: illegal tls_min '1.1' (1.2 or 1.3)"),
        ("tls = a.pem b.pem", "tls.conf:4: syntax error, expected 'tls = /path/"),
    ],
)
def test_a_bad_tls_line_is_an_error_at_its_line(ca, line, message):
    good = ca.issue("good", "good.example")
    with pytest.raises(ConfigError) as error:
        parse_config(config(f"tls = {good.path}", line), "tls.conf")
    assert str(error.value).startswith(message)


def test_edits_load_new_files_keep_the_old_ones_on_error_and_tls_min_alone_reloads(ca):
    one, two = ca.issue("one", "one.example"), ca.issue("two", "two.example")
    table = Table()
    table.add_service("s", listen="127.0.0.1:8443", tls=[str(one.path)])
    service = table.services["s"]
    before = service.certs
    with pytest.raises(TableError, match="illegal tls: cannot read"):
        table.edit_service("s", tls=["/nonexistent.pem"])
    with pytest.raises(TableError, match="illegal tls_min '1.0'"):
        table.edit_service("s", tls_min="1.0")
    assert service.certs is before
    table.edit_service("s", tls_min="1.3")
    assert service.certs is not before and service.certs.tls_min == "1.3"
    table.edit_service("s", tls=[str(two.path)])
    assert service.certs.paths == (str(two.path),) and service.certs.tls_min == "1.3"
    table.edit_service("s", tls=[])
    assert service.certs is None


def test_servers_reached_over_tls_read_list_and_load_back(ca):
    text = config(
        f"tls_ca = {ca.ca_file}",
        "tls_verify = none",
        "server = 127.0.0.1:9443 2 tls api.internal check tcp",
        "server = localhost:9444 tls",
    )
    table = parse_config(text, "re.conf")
    service = table.services["s"]
    named, written, plain = service.servers
    assert (named.tls, named.tls_name, named.configured) == (True, "api.internal", 2)
    assert (written.tls, written.tls_name) == (True, "localhost")  # the host as written
    assert not plain.tls
    assert service.upstream is not None and service.upstream.ca_file == str(ca.ca_file)
    assert service.upstream.context.verify_mode == ssl.CERT_NONE
    listed = render_config(snapshot(table))
    assert "    server = 127.0.0.1:9443 2 tls api.internal check tcp " in listed
    assert "    server = 127.0.0.1:9444 1 tls localhost\n" in listed
    assert f"    tls_ca = {ca.ca_file}\n    tls_verify = none\n" in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("tls_ca = /nonexistent/ca.pem", "illegal tls_ca: cannot read /nonexistent/ca.pem"),
        ("tls_verify = maybe", "re.conf:3: illegal tls_verify 'maybe' (required or none)"),
        ("server = 127.0.0.1:9443 1 tls a b", "re.conf:3: syntax error, expected 'server ="),
        ("server = 127.0.0.1:9443 1 tls bad/name", "re.conf:3: illegal tls name 'bad/name'"),
    ],
)
def test_bad_upstream_tls_lines_are_errors_at_their_line(line, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(config(line), "re.conf")


def test_redirect_https_reads_lists_and_loads_back():
    table = parse_config(config("redirect = HTTPS"), "r.conf")
    assert table.services["s"].redirect_https and table.services["s"].redirect is None
    listed = render_config(snapshot(table))
    assert "    redirect = https\n" in listed
    assert render_config(snapshot(parse_config(listed, "again.conf"))) == listed
