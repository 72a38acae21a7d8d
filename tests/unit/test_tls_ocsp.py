"""OCSP stapling without sockets: a response beside a certificate file is read and checked with
it (every way it can be unusable is an error of the certificate, hence of its config line),
the decision to send it at handshake time (not past its nextUpdate), and stapling turned off,
with one warning, where the ctypes hooks cannot be set."""

from __future__ import annotations

import gc
import logging
import math
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp

from tcpvs.errors import ConfigError
from tcpvs.table.config import parse_config
from tcpvs.tls import ocsp, openssl
from tcpvs.tls.certs import CertificateError, load_certificate
from tcpvs.tls.ocsp import StapleError, parse_staple, staple_for
from tests.support.tls import DAY, CertAuthority, certificate_of, ocsp_response


@pytest.fixture
def ca(tmp_path):
    return CertAuthority(tmp_path)


def test_a_response_for_the_certificate_is_parsed_with_its_status_and_times(ca):
    issued = ca.issue("site", "site.example", intermediate=True)
    before = time.time()
    der = ocsp_response(issued)
    staple = parse_staple(der, issued.leaf())
    assert staple.status == "good" and staple.der == der
    assert abs(staple.this_update - (before - DAY.total_seconds())) < 2
    assert staple.next_update - staple.this_update == 8 * DAY.total_seconds()
    assert staple.fresh(time.time()) and not staple.fresh(staple.next_update)
    revoked = parse_staple(ocsp_response(issued, status="revoked"), issued.leaf())
    assert revoked.status == "revoked"  # stapled too: it is the truth the client asked for
    forever = parse_staple(ocsp_response(issued, next_update=None), issued.leaf())
    assert forever.next_update == math.inf and forever.fresh(time.time() + 1e9)


def test_an_expired_response_is_parsed_but_not_fresh(ca):
    issued = ca.issue("site", "site.example")
    expired = ocsp_response(issued, this_update=-3 * DAY, next_update=-DAY)
    staple = parse_staple(expired, issued.leaf())
    assert not staple.fresh(time.time())


def test_unusable_responses_say_why(ca, tmp_path):
    issued = ca.issue("site", "site.example", intermediate=True)
    other = ca.issue("other", "other.example", intermediate=True)
    leaf, issuer = issued.leaf(), certificate_of(ca.intermediate)
    unauthorized = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(
        x509_ocsp.OCSPResponseStatus.UNAUTHORIZED
    ).public_bytes(Encoding.DER)
    cases = {
        b"": "not a DER-encoded OCSP response",
        b"\x30\x03\x0a\x01\x00": "not a DER-encoded OCSP response",
        ocsp_response(issued)[:-10]: "not a DER-encoded OCSP response",
        unauthorized: "the OCSP response status is unauthorized, not successful",
        ocsp_response(other): "the OCSP response is for another certificate (serial 0x",
        ocsp_response(issued, name_hash=b"\x01" * 20): "another issuer (issuer name hash)",
        ocsp_response(issued, key_hash=b"\x01" * 20): "another issuer (issuer key hash)",
        ocsp_response(issued, this_update=DAY): "not valid before",
    }
    for der, reason in cases.items():
        with pytest.raises(StapleError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            parse_staple(der, leaf, issuer)
    # without the issuer (not in the PEM file) its name hash is still checked, not its key's
    parse_staple(ocsp_response(issued, key_hash=b"\x01" * 20), leaf, None)
    with pytest.raises(StapleError, match="issuer name hash"):
        parse_staple(ocsp_response(issued, name_hash=b"\x01" * 20), leaf, None)


def test_the_issuer_is_found_in_the_pem_file_by_name_and_signature(ca):
    issued = ca.issue("site", "site.example", intermediate=True)
    root = ca.issue("root-signed", "root.example")
    chain = [certificate_of(ca.intermediate), certificate_of(ca.ca)]
    assert ocsp.issuer_of(issued.leaf(), chain) == chain[0]
    assert ocsp.issuer_of(root.leaf(), chain) == chain[1]
    assert ocsp.issuer_of(root.leaf(), chain[:1]) is None


def test_load_certificate_reads_the_staple_beside_it_and_installs_it(ca):
    stapled = ca.issue("site", "site.example", intermediate=True)
    ca.staple(stapled)
    plain = ca.issue("api", "api.example")
    cert = load_certificate(str(stapled.path))
    assert cert.staple is not None and cert.staple.der == stapled.ocsp_path.read_bytes()
    pointer = openssl.ssl_ctx_pointer(cert.context)
    now = time.time()
    assert staple_for(pointer, now) == cert.staple.der
    assert staple_for(pointer, cert.staple.next_update) is None  # past nextUpdate: not sent
    assert staple_for(pointer, cert.staple.next_update - 1) == cert.staple.der
    without = load_certificate(str(plain.path))
    assert without.staple is None
    assert staple_for(openssl.ssl_ctx_pointer(without.context), now) is None
    assert staple_for(None, now) is None
    # the entry goes with its context (the address may be another context's later)
    del cert
    gc.collect()
    assert staple_for(pointer, now) is None and pointer not in ocsp._STAPLES


def test_an_expired_staple_loads_with_a_warning_and_is_not_sent(ca, caplog):
    issued = ca.issue("site", "site.example")
    ca.staple(issued, this_update=-3 * DAY, next_update=-DAY)
    with caplog.at_level(logging.WARNING, logger="tcpvsd"):
        cert = load_certificate(str(issued.path))
    assert cert.staple is not None and cert.staple.status == "good"
    assert staple_for(openssl.ssl_ctx_pointer(cert.context), time.time()) is None
    assert f"{issued.ocsp_path}: the OCSP response expired at " in caplog.text


def test_a_bad_staple_fails_its_certificate_and_its_config_line(ca, tmp_path):
    site = ca.issue("site", "site.example", intermediate=True)
    other = ca.issue("other", "other.example", intermediate=True)
    site.ocsp_path.write_bytes(ocsp_response(other))
    with pytest.raises(CertificateError, match=f"^{site.ocsp_path}: the OCSP response is for an"):
        load_certificate(str(site.path))
    site.ocsp_path.write_bytes(b"-----BEGIN OCSP RESPONSE-----\n")
    text = f"Virtual s {{\n    listen = 127.0.0.1:8443\n    tls = {site.path}\n}}\n"
    with pytest.raises(ConfigError) as error:
        parse_config(text, "tls.conf")
    expected = f"tls.conf:3: tls: {site.ocsp_path}: not a DER-encoded OCSP response"
    assert str(error.value) == expected
    site.ocsp_path.unlink()
    site.ocsp_path.mkdir()
    with pytest.raises(CertificateError, match=f"cannot read {site.ocsp_path}: Is a directory"):
        load_certificate(str(site.path))
    site.ocsp_path.rmdir()
    assert load_certificate(str(site.path)).staple is None  # no file: nothing to staple


def test_without_ctypes_hooks_certificates_load_unstapled_with_one_warning(ca, caplog, monkeypatch):
    monkeypatch.setattr(openssl, "LIBRARY", None)
    monkeypatch.setattr(openssl, "WHY_NOT", "cannot find the SSL_CTX of an ssl.SSLContext")
    monkeypatch.setattr(ocsp, "_warned", False)
    one, two = ca.issue("one", "one.example"), ca.issue("two", "two.example")
    ca.staple(one)
    ca.staple(two)
    before = dict(ocsp._STAPLES)
    with caplog.at_level(logging.WARNING, logger="tcpvsd"):
        loaded = [load_certificate(str(issued.path)) for issued in (one, two, one)]
    assert all(cert.staple is not None for cert in loaded)  # read and checked all the same
    assert ocsp._STAPLES == before  # nothing installed
    warnings = [r.getMessage() for r in caplog.records if "OCSP" in r.getMessage()]
    assert warnings == ["OCSP stapling is off: cannot find the SSL_CTX of an ssl.SSLContext"]
