"""TLS session tickets as a client sees them: a ticket from one worker resumes on every
other, and keys rotate (a ticket older than its keys' life gets a full handshake)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from tests.e2e.test_tls import start_tls
from tests.support.tls import CertAuthority


def handshake(port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None):
    """(session, resumed?) of one connection that also reads an answer (a TLS 1.3 client
    gets its tickets after the handshake)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="site.example", session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n")
            assert tls.recv(12) == b"HTTP/1.1 200"
            return tls.session, tls.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_ticket_resumes_on_every_worker(daemon, backends, tmp_path, version):
    ca = CertAuthority(tmp_path)
    (r1,) = backends("r1")
    d = daemon("--workers", "2")
    port = start_tls(d, tmp_path, [ca.issue("site", "site.example")], r1.address)
    context = ca.client_context()
    context.maximum_version = version
    session, resumed = handshake(port, context)
    assert not resumed
    assert [handshake(port, context, session)[1] for _ in range(16)] == [True] * 16
    served = [w["total_conns"] for w in json.loads(d.ok("-L", "--json"))["workers"]]
    assert len(served) == 2 and min(served) > 0, served  # both workers resumed some


def test_ticket_keys_rotate(daemon, backends, tmp_path):
    ca = CertAuthority(tmp_path)
    (r1,) = backends("r1")
    d = daemon("--tls-ticket-rotation", "1")
    port = start_tls(d, tmp_path, [ca.issue("site", "site.example")], r1.address)
    context = ca.client_context()
    session, _ = handshake(port, context)
    assert handshake(port, context, session)[1]
    time.sleep(3.1)  # two periods kept after the one that sealed it: at most 3 s in all
    assert not handshake(port, context, session)[1]


def test_tcpvsds_given_one_secret_file_resume_each_others_tickets(daemon, backends, tmp_path):
    ca = CertAuthority(tmp_path)
    cert = ca.issue("site", "site.example")
    (r1,) = backends("r1")
    secret = tmp_path / "ticket.secret"
    secret.write_bytes(os.urandom(48))
    secret.chmod(0o600)
    ports = []
    shared = ["--tls-ticket-secret", str(secret)]
    for name, args in [("a", shared), ("b", shared), ("c", [])]:
        (tmp_path / name).mkdir()
        ports.append(start_tls(daemon(*args), tmp_path / name, [cert], r1.address))
    context = ca.client_context()
    session, _ = handshake(ports[0], context)
    assert handshake(ports[1], context, session)[1]  # another machine, the same file
    assert not handshake(ports[2], context, session)[1]  # a tcpvsd with its own secret


def test_a_ticket_secret_that_cannot_be_one_stops_tcpvsd_at_start(tmp_path):
    short = tmp_path / "short.secret"
    short.write_bytes(b"too short")
    done = subprocess.run(
        [sys.executable, "-m", "tcpvs.daemon", "--socket", str(tmp_path / "s")]
        + ["--tls-ticket-secret", str(short)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{short}: 9 bytes, a ticket secret needs 32" in done.stderr
