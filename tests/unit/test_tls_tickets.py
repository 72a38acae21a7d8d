"""Session ticket keys: derived from a secret per period, the same in two processes, opening
old tickets for KEEP periods. The handshakes here run over memory BIOs, no socket."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tcpvs.tls import tickets
from tcpvs.tls.settings import server_context
from tests.support.tls import CertAuthority

SECRET = bytes(range(32))
HOUR = 3600.0


def test_keys_depend_on_the_secret_and_the_period_only():
    one, other = tickets.TicketKeys(SECRET), tickets.TicketKeys(SECRET)
    assert one.sealing(10.0) == other.sealing(HOUR - 1)  # same period, two "workers"
    assert one.sealing(HOUR) != one.sealing(0.0)
    assert tickets.TicketKeys(bytes(32)).sealing(0.0) != one.sealing(0.0)
    key = one.sealing(0.0)
    assert (len(key.name), len(key.aes), len(key.hmac)) == (16, 32, 32)
    assert len({key.name, key.aes, key.hmac}) == 3


def test_an_old_key_opens_for_keep_periods_and_asks_for_a_new_ticket():
    keys = tickets.TicketKeys(SECRET, rotation=60.0)
    sealed = keys.sealing(30.0)
    assert keys.opening(sealed.name, 59.0) == (sealed, False)
    for later in range(1, tickets.KEEP + 1):
        assert keys.opening(sealed.name, 30.0 + 60.0 * later) == (sealed, True)
    assert keys.opening(sealed.name, 30.0 + 60.0 * (tickets.KEEP + 1)) is None
    assert keys.opening(b"x" * 16, 30.0) is None


def test_forgotten_keys_are_dropped():
    keys = tickets.TicketKeys(SECRET, rotation=1.0)
    for second in range(100):
        keys.sealing(float(second))
    assert len(keys._keys) == len(keys._periods) == tickets.KEEP + 1


@pytest.mark.parametrize("secret, rotation", [(b"short", HOUR), (SECRET, 0.0)])
def test_bad_parameters_are_refused(secret, rotation):
    with pytest.raises(ValueError):
        tickets.TicketKeys(secret, rotation)


def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None
) -> ssl.SSLObject:
    """A whole TLS handshake between two SSLObjects over memory BIOs, plus one byte each way
    (a TLS 1.3 client gets its tickets after the handshake); the client's end."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname="site.test", session=session)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for end in (tls_client, tls_server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    tls_server.write(b"x")
    c_in.write(s_out.read())
    assert tls_client.read(1) == b"x"
    return tls_client


@pytest.fixture
def contexts(tmp_path: Path):
    authority = CertAuthority(tmp_path)
    issued = authority.issue("site", "site.test")

    def server() -> ssl.SSLContext:
        context = server_context()
        context.load_cert_chain(issued.path)
        assert tickets.install(context)
        return context

    tickets.configure(SECRET)
    yield server, authority.client_context
    tickets.configure(tickets.new_secret())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_ticket_from_one_context_resumes_on_another_with_the_same_secret(contexts, version):
    server, client = contexts
    one, other = server(), server()  # two workers' listeners
    client_context = client()
    client_context.maximum_version = version
    first = _handshake(one, client_context, None)
    assert not first.session_reused and first.session is not None
    second = _handshake(other, client_context, first.session)
    assert second.session_reused and second.version() == first.version()


def test_a_ticket_does_not_resume_under_another_secret(contexts):
    server, client = contexts
    client_context = client()
    first = _handshake(server(), client_context, None)
    tickets.configure(bytes(32))
    assert not _handshake(server(), client_context, first.session).session_reused


def test_a_secret_file_is_read_whole_and_refused_when_short_or_missing(tmp_path, caplog):
    text = tmp_path / "text.secret"
    text.write_text("c2VjcmV0IG1hZGUgYnkgb3BlbnNzbCByYW5kIC1iYXNlNjQgNDg=\n")
    text.chmod(0o600)
    assert tickets.read_secret(str(text)) == text.read_bytes().strip()
    assert not caplog.records
    text.chmod(0o644)
    tickets.read_secret(str(text))
    assert "readable by others than its owner" in caplog.text
    (tmp_path / "short").write_bytes(b"x" * 31)
    with pytest.raises(ValueError, match="31 bytes, a ticket secret needs 32"):
        tickets.read_secret(str(tmp_path / "short"))
    with pytest.raises(ValueError, match="cannot read"):
        tickets.read_secret(str(tmp_path / "missing"))
