"""TLS termination with real clients (curl, openssl s_client, Python ssl): the certificate
chosen by SNI (checked by its fingerprint), protocol versions, ALPN, resumption, requests
routed as plain ones with X-Forwarded-Proto, WebSocket over TLS, certificates reloaded while a
connection stays open, bad certificate files refused with nothing changed, clients that
do not speak TLS (or never finish a handshake) cut without hurting anyone else, and OCSP
responses stapled (s_client -status, curl --cert-status)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
import trustme

from tcpvs.compiled import WHY_NOT_OWN_TLS
from tcpvs.http.responses import PLAIN_HTTP_TO_TLS
from tests.support.client import get
from tests.support.procs import ENGINE_BUILDS, free_port, stop
from tests.support.tls import (
    DAY,
    CertAuthority,
    HttpsConnection,
    ocsp_response,
    s_client,
    served_fingerprint,
)


@pytest.fixture
def ca(tmp_path):
    return CertAuthority(tmp_path)


def tls_config(port: int, certs, backend: str, *extra: str) -> str:
    lines = ["Virtual secure {", f"    listen = 127.0.0.1:{port}", "    scheduler = http"]
    lines += [f"    tls = {cert.path}" for cert in certs]
    lines += [f"    {line}" for line in extra]
    lines += [f"    server = {backend} 1", "}"]
    return "\n".join(lines) + "\n"


def start_tls(d, tmp_path, certs, backend: str, *extra: str) -> int:
    port = free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(tls_config(port, certs, backend, *extra))
    d.ok("-f", str(conf))
    d.ok("--start")
    return port


def load_with_a_second_cert(d, tmp_path, port: int, first, backend: str, second) -> tuple:
    """(the config file, `tcpvsadm -f` of it): the service of start_tls with a second `tls`
    line (line 5) naming `second`."""
    conf = tmp_path / "bad.conf"
    conf.write_text(
        tls_config(port, [first], backend).replace(
            f"    tls = {first.path}\n", f"    tls = {first.path}\n    tls = {second}\n"
        )
    )
    return conf, d.adm("-f", str(conf))


def curl(port: int, name: str, ca: CertAuthority, path: str = "/headers") -> tuple[str, str]:
    """(body, "<status> <certificate fingerprint>") of `curl https://NAME:PORT/PATH`."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(ca.ca_file),
            "--resolve",
            f"{name}:{port}:127.0.0.1",
            f"https://{name}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_the_certificate_is_chosen_by_sni_and_requests_carry_x_forwarded_proto(
    daemon, backends, tmp_path, ca, build
):
    site = ca.issue("site", "site.example", "*.site.example")
    api = ca.issue("api", "api.example", key_type=trustme.KeyType.RSA)
    (r1,) = backends("r1")
    d = daemon(env=ENGINE_BUILDS[build])
    port = start_tls(d, tmp_path, [site, api], r1.address)
    context = ca.client_context()
    for name, cert in [
        ("site.example", site),
        ("www.site.example", site),  # the wildcard
        ("api.example", api),
        ("API.Example", api),  # names compare without case
    ]:
        assert served_fingerprint(port, name, ca.client_context()) == cert.fingerprint, name
    # no SNI, or a name no certificate has: the first one (as nginx's default server)
    assert served_fingerprint(port, None, ca.client_context()) == site.fingerprint
    assert served_fingerprint(port, "a.b.site.example", ca.client_context()) == site.fingerprint
    body, _ = curl(port, "api.example", ca)
    headers = dict(json.loads(body))
    assert headers["X-Forwarded-Proto"] == "https" and headers["X-Forwarded-For"] == "127.0.0.1"
    # keep-alive and pipelining work as over plain TCP
    conn = HttpsConnection(port, "site.example", context)
    for i in range(5):
        conn.request("GET", f"/echo?n={i}")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("X-Backend") == "r1"
        resp.read()
    conn.close()
    listing = d.ok("-L", "-n")
    assert f"    tls = {site.path}\n    tls = {api.path}\n" in listing


def test_versions_alpn_and_resumption_as_openssl_sees_them(daemon, backends, tmp_path, ca):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [cert], r1.address)
    common = ("-servername", "site.example", "-CAfile", str(ca.ca_file))
    assert "Protocol  : TLSv1.2" in s_client(port, *common, "-tls1_2").stdout
    assert "New, TLSv1.3" in s_client(port, *common, "-tls1_3").stdout
    old = s_client(port, *common, "-tls1_1")
    assert old.returncode != 0 and "Cipher is (NONE)" in old.stdout
    assert "ALPN protocol: http/1.1" in s_client(port, *common, "-alpn", "h2,http/1.1").stdout
    assert "No ALPN negotiated" in s_client(port, *common, "-alpn", "h2").stdout
    session = tmp_path / "session.pem"
    first = s_client(port, *common, "-tls1_2", "-sess_out", str(session))
    assert "New, TLSv1.2" in first.stdout
    again = s_client(port, *common, "-tls1_2", "-sess_in", str(session))
    assert "Reused, TLSv1.2" in again.stdout
    # TLS 1.3: the tickets come after the handshake; the client reads on until the end
    ask = "GET / HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n"
    s_client(port, *common, "-tls1_3", "-sess_out", str(session), "-ign_eof", stdin=ask)
    again = s_client(port, *common, "-tls1_3", "-sess_in", str(session))
    assert "Reused, TLSv1.3" in again.stdout


def test_tls_min_1_3_refuses_tls_1_2(daemon, backends, tmp_path, ca):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [cert], r1.address, "tls_min = 1.3")
    common = ("-servername", "site.example", "-CAfile", str(ca.ca_file))
    assert s_client(port, *common, "-tls1_2").returncode != 0
    assert "New, TLSv1.3" in s_client(port, *common, "-tls1_3").stdout
    assert "    tls_min = 1.3\n" in d.ok("-L", "-n")


def test_websocket_over_tls(daemon, backends, tmp_path, ca):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [cert], r1.address)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ca.client_context().wrap_socket(raw, server_hostname="site.example") as tls:
        upgrade = b"Upgrade: echo\r\nConnection: Upgrade\r\n"
        tls.sendall(b"GET /ws HTTP/1.1\r\nHost: site.example\r\n" + upgrade + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        tls.sendall(b"ping over tls")
        echoed = b""
        while len(echoed) < len(b"ping over tls"):
            echoed += tls.recv(4096)
        assert echoed == b"ping over tls"


@pytest.mark.parametrize("how", ["edit", "load", "sighup"])
def test_a_new_certificate_serves_new_handshakes_while_open_connections_keep_theirs(
    daemon, backends, tmp_path, ca, how
):
    old, new = ca.issue("old", "site.example"), ca.issue("new", "site.example")
    (r1,) = backends("r1")
    conf = tmp_path / "tls.conf"
    port = free_port()
    conf.write_text(tls_config(port, [old], r1.address))
    d = daemon("-f", str(conf))
    conn = HttpsConnection(port, "site.example", ca.client_context())
    conn.request("GET", "/before")
    conn.getresponse().read()
    held = conn.sock.getpeercert(binary_form=True)
    if how == "edit":
        d.ok("-E", "-i", "secure", "--tls", str(new.path))
    else:
        conf.write_text(tls_config(port, [new], r1.address))
        if how == "load":
            d.ok("-f", str(conf))
        else:
            os.kill(d.proc.pid, signal.SIGHUP)
            end = time.monotonic() + 10
            while served_fingerprint(port, "site.example", ca.client_context()) != new.fingerprint:
                assert time.monotonic() < end, "SIGHUP did not load the new certificate"
                time.sleep(0.1)
    assert served_fingerprint(port, "site.example", ca.client_context()) == new.fingerprint
    conn.request("GET", "/after")  # the open connection goes on, with its certificate
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read()
    assert conn.sock.getpeercert(binary_form=True) == held
    conn.close()


def test_a_bad_certificate_file_is_refused_at_its_line_and_changes_nothing(
    daemon, backends, tmp_path, ca
):
    good = ca.issue("good", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [good], r1.address)
    cases = {
        str(tmp_path / "missing.pem"): "cannot read",
        str(ca.mismatched("mismatched")): "the private key does not match the certificate",
    }
    before = d.ok("-L", "-n")
    for path, reason in cases.items():
        bad, done = load_with_a_second_cert(d, tmp_path, port, good, r1.address, path)
        assert done.returncode != 0
        assert done.stderr.startswith(f"{bad}:5: tls: ") and reason in done.stderr, done.stderr
        edit = d.adm("-E", "-i", "secure", "--tls", path)
        assert edit.returncode != 0 and reason in edit.stderr
        assert d.ok("-L", "-n") == before
        assert served_fingerprint(port, "site.example", ca.client_context()) == good.fingerprint
    plain = d.adm("-E", "-i", "secure", "--tls", "none")
    assert plain.returncode != 0 and "stopped" in plain.stderr  # TLS off: stop it first


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_clients_that_do_not_speak_tls_are_cut_and_everyone_else_is_served(
    daemon, backends, tmp_path, ca
):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [cert], r1.address, "client_timeout = 1")
    context = ca.client_context()
    assert served_fingerprint(port, "site.example", context) == cert.fingerprint
    baseline = _fds(d.proc.pid)

    def answer_to(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(data)
            got = b""
            while chunk := plain.recv(4096):
                got += chunk
            return got

    # plain HTTP to the TLS port: a plain 400 saying why (nginx's way) with tcpvs's TLS layer,
    # closed with the loop's; garbage instead of a ClientHello: closed; nothing relayed
    plain = answer_to(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert plain == (b"" if WHY_NOT_OWN_TLS else PLAIN_HTTP_TO_TLS)
    if not WHY_NOT_OWN_TLS:  # what a user who typed http:// reads
        typed = subprocess.run(
            ["curl", "-sS", f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=30
        )
        assert typed.stdout == "400 Bad Request: a plain HTTP request was sent to a TLS port\n"
    assert answer_to(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)[:1] in (b"", b"\x15")
    assert not [r for r in r1.requests() if r["path"] == "/"]
    # a handshake that stalls is cut at client_timeout
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    started = time.monotonic()
    assert stalled.recv(4096) in (b"", b"\x15\x03\x03\x00\x02\x02\x28")
    assert 0.5 <= time.monotonic() - started <= 5
    stalled.close()
    # Thousands of handshakes that never finish, in rounds: a real client is still served
    # meanwhile, and every descriptor comes back once they are cut. (Memory: docs/tls.md.)
    for _ in range(4):
        hanging = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(500)]
        for sock in hanging:
            sock.sendall(b"\x16\x03\x01")
        conn = HttpsConnection(port, "site.example", context)
        conn.request("GET", "/meanwhile")
        assert conn.getresponse().status == 200
        conn.close()
        end = time.monotonic() + 10
        while _fds(d.proc.pid) > baseline + 2 and time.monotonic() < end:
            time.sleep(0.2)  # cut at client_timeout: their descriptors are given back
        assert _fds(d.proc.pid) <= baseline + 2
        for sock in hanging:
            sock.close()


def test_tls_through_two_workers(daemon, backends, tmp_path, ca):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon("--workers", "2")
    port = start_tls(d, tmp_path, [cert], r1.address)
    for _ in range(6):
        body, _ = curl(port, "site.example", ca)
        assert dict(json.loads(body))["X-Forwarded-Proto"] == "https"
    stats = json.loads(d.ok("-L", "--json"))["services"][0]
    assert stats["tls"] == [str(cert.path)] and stats["stats"]["requests"] == 6


# -- OCSP stapling ------------------------------------------------------------------------------


def stapled(port: int, name: str | None, ca: CertAuthority, *args: str) -> str:
    """What `openssl s_client -status` says of the OCSP response it got: "none" (it asked
    and none was sent), else the response's status and the certificate's ("successful good")."""
    sni = ("-servername", name) if name else ("-noservername",)
    done = s_client(port, "-status", *sni, "-CAfile", str(ca.ca_file), *args)
    assert "Verify return code: 0 (ok)" in done.stdout, done.stdout + done.stderr
    if "OCSP response: no response sent" in done.stdout:
        return "none"
    lines = [line.strip() for line in done.stdout.splitlines()]
    status = next(line for line in lines if line.startswith("OCSP Response Status:"))
    cert = next(line for line in lines if line.startswith("Cert Status:"))
    return f"{status.split()[3]} {cert.split()[2]}"


def curl_cert_status(port: int, name: str, ca: CertAuthority) -> subprocess.CompletedProcess:
    """`curl --cert-status`: the request fails unless a valid OCSP response is stapled."""
    return subprocess.run(
        ["curl", "-sS", "--cert-status", "--cacert", str(ca.ca_file)]
        + ["--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/headers"],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_a_certificate_with_an_ocsp_file_has_it_stapled_and_one_without_does_not(
    daemon, backends, tmp_path, ca, build
):
    site = ca.issue("site", "site.example", intermediate=True)
    api = ca.issue("api", "api.example", intermediate=True, key_type=trustme.KeyType.RSA)
    ca.staple(site)
    (r1,) = backends("r1")
    d = daemon(env=ENGINE_BUILDS[build])
    port = start_tls(d, tmp_path, [site, api], r1.address)
    for version in ("-tls1_2", "-tls1_3"):
        assert stapled(port, "site.example", ca, version) == "successful good", version
        assert stapled(port, "api.example", ca, version) == "none", version
    assert stapled(port, None, ca) == "successful good"  # no SNI: the first certificate
    # the response about this certificate; curl checks it (signature, CertID) against the CA
    done = s_client(port, "-status", "-servername", "site.example", "-CAfile", str(ca.ca_file))
    serial = f"{site.leaf().serial_number:X}"
    assert f"Serial Number: {serial.zfill(len(serial) + len(serial) % 2)}\n" in done.stdout
    ok = curl_cert_status(port, "site.example", ca)
    assert ok.returncode == 0 and dict(json.loads(ok.stdout))["X-Forwarded-Proto"] == "https"
    refused = curl_cert_status(port, "api.example", ca)
    assert refused.returncode == 91 and "No OCSP response received" in refused.stderr
    # clients that do not ask get none, and are served as before
    plain = s_client(port, "-servername", "site.example", "-CAfile", str(ca.ca_file))
    assert "OCSP response" not in plain.stdout and "Verify return code: 0 (ok)" in plain.stdout


@pytest.mark.parametrize("how", ["edit", "load", "sighup"])
def test_a_reload_reads_the_ocsp_file_again(daemon, backends, tmp_path, ca, how):
    site = ca.issue("site", "site.example", intermediate=True)
    ca.staple(site)
    (r1,) = backends("r1")
    conf = tmp_path / "tls.conf"
    port = free_port()
    conf.write_text(tls_config(port, [site], r1.address))
    d = daemon("-f", str(conf))
    assert stapled(port, "site.example", ca) == "successful good"

    def reload(expected: str) -> None:
        if how == "edit":
            d.ok("-E", "-i", "secure", "--tls", str(site.path))
        elif how == "load":
            d.ok("-f", str(conf))
        else:
            os.kill(d.proc.pid, signal.SIGHUP)
            end = time.monotonic() + 10
            while stapled(port, "site.example", ca) != expected:
                assert time.monotonic() < end, f"SIGHUP did not load {expected}"
                time.sleep(0.1)
        assert stapled(port, "site.example", ca) == expected

    ca.staple(site, status="revoked")  # a new response: the one sent after the reload
    assert stapled(port, "site.example", ca) == "successful good"  # read at load, not before
    reload("successful revoked")
    ca.staple(site, this_update=-3 * DAY, next_update=-DAY)  # past its nextUpdate
    reload("none")
    ca.staple(site)
    reload("successful good")
    site.ocsp_path.unlink()
    reload("none")
    assert stop(d.proc) == 0
    assert f"{site.ocsp_path}: the OCSP response expired at " in d.proc.stderr.read()


def test_a_bad_ocsp_file_is_refused_at_its_line_and_the_service_staples_on(
    daemon, backends, tmp_path, ca
):
    good = ca.issue("good", "site.example", intermediate=True)
    ca.staple(good)
    other = ca.issue("other", "other.example", intermediate=True)
    (r1,) = backends("r1")
    d = daemon()
    port = start_tls(d, tmp_path, [good], r1.address)
    before = d.ok("-L", "-n")
    cases = {
        b"not DER at all": "not a DER-encoded OCSP response",
        ocsp_response(good): "the OCSP response is for another certificate",
    }
    for content, reason in cases.items():
        other.ocsp_path.write_bytes(content)
        bad, done = load_with_a_second_cert(d, tmp_path, port, good, r1.address, other.path)
        assert done.returncode != 0
        expected = f"{bad}:5: tls: {other.ocsp_path}: {reason}"
        assert done.stderr.startswith(expected), done.stderr
        edit = d.adm("-E", "-i", "secure", "--tls", str(good.path), "--tls", str(other.path))
        assert edit.returncode != 0 and f"{other.ocsp_path}: {reason}" in edit.stderr
        assert d.ok("-L", "-n") == before
        assert stapled(port, "site.example", ca) == "successful good"
        assert served_fingerprint(port, "other.example", ca.client_context()) == good.fingerprint


def test_every_worker_staples(daemon, backends, tmp_path, ca):
    site = ca.issue("site", "site.example", intermediate=True)
    ca.staple(site)
    (r1,) = backends("r1")
    d = daemon("--workers", "2")
    port = start_tls(d, tmp_path, [site], r1.address)
    assert [stapled(port, "site.example", ca) for _ in range(8)] == ["successful good"] * 8


# -- passthrough: TLS routed by SNI without decrypting ----------------------------------------


def passthrough_config(port: int, lines: list[str]) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"Virtual pass {{\n    listen = 127.0.0.1:{port}\n    scheduler = wlc\n{body}}}\n"


@pytest.mark.parametrize("build", list(ENGINE_BUILDS))
def test_passthrough_routes_by_sni_to_tls_servers_that_end_it_themselves(
    daemon, backends, tmp_path, ca, build
):
    a_cert = ca.issue("a", "a.example")
    b_cert = ca.issue("b", "*.b.example", "*.c.example")
    (a,) = backends("a", options=("--tls", str(a_cert.path)))
    (b,) = backends("b", options=("--tls", str(b_cert.path)))
    d = daemon(env=ENGINE_BUILDS[build])
    port = free_port()
    conf = tmp_path / "pass.conf"
    rules = [
        f"server = {a.address} 1",
        f"server = {b.address} 1",
        f'rule = sni "a.example" use server {a.address}',
        f'rule = sni "*.b.example" use server {b.address}',
        f'rule = sni "~^api[0-9]+\\.c\\.example$" use server {b.address}',
    ]
    conf.write_text(passthrough_config(port, rules))
    d.ok("-f", str(conf))
    d.ok("--start")
    # each server's own certificate: the bytes went through untouched
    assert served_fingerprint(port, "a.example", ca.client_context()) == a_cert.fingerprint
    assert served_fingerprint(port, "x.b.example", ca.client_context()) == b_cert.fingerprint
    for name, backend in [("a.example", "a"), ("www.b.example", "b"), ("api7.c.example", "b")]:
        conn = HttpsConnection(port, name, ca.client_context())
        conn.request("GET", "/big/1048576")  # spliced once routed
        resp = conn.getresponse()
        assert (resp.getheader("X-Backend"), len(resp.read())) == (backend, 1048576), name
        conn.close()
    # no SNI, and no default rule: closed, never sent to an arbitrary server
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served_fingerprint(port, None, ca.client_context())
    listing = d.ok("-L", "-n")
    assert f'    rule = sni "*.b.example" use server {b.address}\n' in listing
    d.ok("--add-rule", "-i", "pass", "--sni", "-p", "*", "-r", a.address)
    assert served_fingerprint(port, None, ca.client_context()) == a_cert.fingerprint
    refused = d.adm("--add-rule", "-i", "pass", "--sni", "-p", "Bad Name", "-r", a.address)
    assert refused.returncode != 0 and "Invalid sni pattern" in refused.stderr


# -- re-encryption: TLS to the servers --------------------------------------------------------


def reencrypt_config(port: int, server: str, *extra: str) -> str:
    body = "".join(f"    {line}\n" for line in extra)
    return (
        f"Virtual re {{\n    listen = 127.0.0.1:{port}\n    scheduler = http\n{body}"
        f"    server = {server}\n}}\n"
    )


def test_servers_reached_over_tls_are_verified_and_their_connections_pooled(
    daemon, backends, tmp_path, ca
):
    cert = ca.issue("backend", "backend.internal")
    (s1,) = backends("s1", options=("--tls", str(cert.path)))
    other = CertAuthority(tmp_path / "other")
    d = daemon()
    port = free_port()
    conf = tmp_path / "re.conf"

    def load(server: str, *extra: str) -> None:
        # (fail_timeout 0: a server that just failed a handshake is tried again at once)
        conf.write_text(reencrypt_config(port, server, "fail_timeout = 0", *extra))
        d.ok("-f", str(conf))
        d.ok("--start")

    load(f"{s1.address} 1 tls backend.internal", f"tls_ca = {ca.ca_file}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(5):
        conn.request("GET", f"/pooled?id={i}")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("X-Backend")) == (200, "s1")
        resp.read()
    conn.close()
    peers = {r["peer"] for r in s1.requests() if r["path"].startswith("/pooled")}
    assert len(peers) == 1  # one TLS connection to the server, reused
    listing = d.ok("-L", "-n")
    assert f"    server = {s1.address} 1 tls backend.internal\n" in listing
    assert f"    tls_ca = {ca.ca_file}\n" in listing
    # a name the certificate does not have, then a CA that did not sign it: 502
    load(f"{s1.address} 1 tls wrong.internal", f"tls_ca = {ca.ca_file}")
    assert get(port, "/wrong-name")[0] == 502
    load(f"{s1.address} 1 tls backend.internal", f"tls_ca = {other.ca_file}")
    assert get(port, "/wrong-ca")[0] == 502
    # said explicitly: no verification
    load(f"{s1.address} 1 tls backend.internal", f"tls_ca = {other.ca_file}", "tls_verify = none")
    assert get(port, "/unverified")[0] == 200
    assert not [r for r in s1.requests() if r["path"] in ("/wrong-name", "/wrong-ca")]
    # tcpvsadm: a plain server turned into a TLS one, and back
    load(f"{s1.address} 1", f"tls_ca = {ca.ca_file}")
    assert get(port, "/plain-to-tls")[0] == 502  # plain bytes to a TLS server
    d.ok("-e", "-i", "re", "-r", s1.address, "--server-tls", "backend.internal")
    assert get(port, "/now-tls")[0] == 200
    assert f"    server = {s1.address} 1 tls backend.internal\n" in d.ok("-L", "-n")
    d.ok("-e", "-i", "re", "-r", s1.address, "--server-tls", "off")
    assert f"    server = {s1.address} 1\n" in d.ok("-L", "-n")
    refused = d.adm("-e", "-i", "re", "-r", s1.address, "--server-tls", "bad/name")
    assert (refused.returncode, refused.stderr) == (1, "illegal tls name 'bad/name'\n")
    assert stop(d.proc) == 0
    log = d.proc.stderr.read()
    where = f"service re: server {s1.address}: TLS handshake failed"
    assert f"{where}: Hostname mismatch, certificate is not valid for 'wrong.internal'." in log
    assert f"{where}: unable to get local issuer certificate" in log


def test_a_plain_service_sends_every_request_to_https_and_curl_follows(
    daemon, backends, tmp_path, ca
):
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    d = daemon()
    tls_port = start_tls(d, tmp_path, [cert], r1.address)
    plain_port = free_port()
    conf = tmp_path / "plain.conf"
    conf.write_text(
        tls_config(tls_port, [cert], r1.address)
        + f"Virtual plain {{\n    listen = 127.0.0.1:{plain_port}\n    redirect = https\n}}\n"
    )
    d.ok("-f", str(conf))
    d.ok("--start")
    host = f"site.example:{tls_port}"
    status, headers, _ = get(plain_port, "/page?q=1", headers={"Host": host})
    assert (status, headers["Location"]) == (301, f"https://{host}/page?q=1")
    status, headers, _ = get(plain_port, "/form", method="POST", body=b"x", headers={"Host": host})
    assert (status, headers["Location"]) == (308, f"https://{host}/form")
    followed = subprocess.run(
        ["curl", "-sSL", "--cacert", str(ca.ca_file), "--resolve", f"{host}:127.0.0.1"]
        + ["-H", f"Host: {host}", f"http://127.0.0.1:{plain_port}/headers"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert followed.returncode == 0, followed.stderr
    assert dict(json.loads(followed.stdout))["X-Forwarded-Proto"] == "https"
