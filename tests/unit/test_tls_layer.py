"""tcpvs's own TLS layer (tcpvs/_fast/tlslayer.pyx) between stand-ins for the TCP transport,
the ClientConnection and the listener, with a Python ssl client over memory BIOs: no socket,
no event loop. (The pure-Python engine has no such layer: it runs the loop's.)"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tcpvs.compiled import WHY_NOT_OWN_TLS
from tcpvs.http.responses import PLAIN_HTTP_TO_TLS
from tcpvs.tls import openssl, tickets
from tcpvs.tls.settings import server_context
from tests.support.tls import CertAuthority

pytestmark = pytest.mark.skipif(bool(WHY_NOT_OWN_TLS), reason=WHY_NOT_OWN_TLS)
MIB = 1 << 20


class Tcp:
    """The TCP transport: what the layer writes, and what it asks of the socket."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.closed = self.aborted = self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.1", 40000) if name == "peername" else default


class App:
    """The ClientConnection: what it hears."""

    def __init__(self) -> None:
        self.transport: object = None
        self.received = bytearray()
        self.events: list[str] = []

    def connection_made(self, transport: object) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


class Listener:
    def __init__(self, by_name: dict[str | None, ssl.SSLContext]) -> None:
        self.by_name = by_name
        self.asked: list[str | None] = []
        self.handshaking: set[object] = set()

    def certificate_for(self, server_name: str | None) -> int:
        self.asked.append(server_name)
        return openssl.ssl_ctx_pointer(self.by_name.get(server_name, self.by_name[None]))

    def handshake_started(self, layer: object) -> None:
        self.handshaking.add(layer)

    def handshake_ended(self, layer: object) -> None:
        self.handshaking.discard(layer)


class Loop:
    def __init__(self) -> None:
        self.soon: list[Callable[[], object]] = []

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.soon.append(callback)

    def run(self) -> None:
        while self.soon:
            self.soon.pop(0)()


class Session:
    """A layer and a Python ssl client, bytes carried between them by hand."""

    def __init__(
        self,
        tmp_path: Path,
        server_name: str | None = "site.test",
        authority: CertAuthority | None = None,
        client: ssl.SSLContext | None = None,
        session: ssl.SSLSession | None = None,
    ) -> None:
        from tcpvs._fast.tlslayer import TlsLayer, prepare

        authority = authority or CertAuthority(tmp_path)
        self.certs = {
            name: authority.issue(name.split(".")[0], name) for name in ("site.test", "api.test")
        }
        contexts: dict[str | None, ssl.SSLContext] = {}
        for name, issued in self.certs.items():
            contexts[name] = server_context()
            contexts[name].load_cert_chain(issued.path)
        contexts[None] = contexts["site.test"]
        base = server_context()  # the listener's: no certificate of its own
        prepare(openssl.ssl_ctx_pointer(base))
        self.listener, self.app, self.tcp, self.loop = Listener(contexts), App(), Tcp(), Loop()
        self.layer = TlsLayer(self.listener, self.app, openssl.ssl_ctx_pointer(base), self.loop)
        self.base = base  # alive as long as the layer
        self.layer.connection_made(self.tcp)
        self.c_in, self.c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        context = client or authority.client_context()
        context.check_hostname = server_name is not None
        self.client = context.wrap_bio(
            self.c_in, self.c_out, server_hostname=server_name, session=session
        )

    def pump(self) -> None:
        """Carry bytes both ways until neither side has any to send."""
        for _ in range(20):
            try:
                self.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            to_server = self.c_out.read()
            if to_server:
                self.layer.data_received(to_server)
            self.loop.run()
            to_client, self.tcp.sent[:] = bytes(self.tcp.sent), b""
            if to_client:
                self.c_in.write(to_client)
            if not to_server and not to_client:
                return

    def client_reads(self) -> bytes:
        got = bytearray()
        while True:
            try:
                got += self.client.read(MIB)
            except ssl.SSLWantReadError:
                return bytes(got)


def test_the_handshake_serves_the_certificate_of_the_name_and_then_the_app_connects(tmp_path):
    for name in ("api.test", "site.test", None):
        s = Session(tmp_path / str(name), name)
        assert s.listener.handshaking == {s.layer}
        s.pump()
        der = s.client.getpeercert(binary_form=True)
        served = hashlib.sha256(der).hexdigest()
        assert served == s.certs[name or "site.test"].fingerprint
        assert s.listener.asked == [name]
        assert s.app.events == ["made"] and s.app.transport is s.layer
        assert s.listener.handshaking == set()
        assert s.client.selected_alpn_protocol() == "http/1.1"  # Python's ALPN callback
        assert s.layer.get_extra_info("peername") == ("192.0.2.1", 40000)


def test_bytes_cross_both_ways_a_mebibyte_included(tmp_path):
    s = Session(tmp_path)
    s.pump()
    request = b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"
    s.client.write(request)
    s.pump()
    assert bytes(s.app.received) == request
    body = bytes(range(256)) * (MIB // 256)
    s.layer.write(body)
    s.layer.write(memoryview(b"and a view"))
    s.layer.write(b"")  # nothing to send: no record, and no error
    s.pump()
    assert s.client_reads() == body + b"and a view"


def test_paused_reading_holds_the_plain_text_until_resumed(tmp_path):
    s = Session(tmp_path)
    s.pump()
    s.layer.pause_reading()
    assert s.tcp.paused and not s.layer.is_reading()
    s.client.write(b"held")
    s.pump()
    assert s.app.received == b""
    s.layer.resume_reading()
    assert not s.tcp.paused and s.loop.soon  # delivered at the loop's next turn
    s.loop.run()
    assert s.app.received == b"held"


def test_a_close_notify_from_the_client_is_its_end(tmp_path):
    s = Session(tmp_path)
    s.pump()
    with pytest.raises(ssl.SSLWantReadError):
        s.client.unwrap()
    s.pump()
    assert s.app.events == ["made", "eof"] and s.tcp.closed
    s.layer.connection_lost(None)
    assert s.app.events == ["made", "eof", "lost"]


def test_close_says_close_notify_then_closes_the_socket(tmp_path):
    s = Session(tmp_path)
    s.pump()
    s.layer.write(b"last words")
    s.layer.close()
    assert s.tcp.closed and s.layer.is_closing()
    s.c_in.write(bytes(s.tcp.sent))
    assert s.client.read(100) == b"last words"
    assert s.client.read(100) == b""  # close_notify (without it: SSLWantReadError)
    s.layer.write(b"after the close")  # ignored, as a closing transport does
    s.layer.data_received(b"more")  # likewise


def test_plain_http_gets_a_plain_400_and_never_reaches_the_app(tmp_path):
    s = Session(tmp_path)
    s.layer.data_received(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
    assert bytes(s.tcp.sent) == PLAIN_HTTP_TO_TLS and s.tcp.closed and s.app.events == []
    assert b"plain HTTP request was sent to a TLS port" in PLAIN_HTTP_TO_TLS


@pytest.mark.parametrize(
    "garbage", [b"\x16\x03\x01\x00\x05hello", b"\xff" * 600, b"\x00GET / HTTP/1.1\r\n"]
)
def test_garbage_instead_of_a_client_hello_closes_and_never_reaches_the_app(tmp_path, garbage):
    s = Session(tmp_path)
    s.layer.data_received(garbage)
    assert s.tcp.closed and s.app.events == []
    assert not s.tcp.sent.startswith(b"HTTP/")
    s.layer.connection_lost(None)
    assert s.app.events == [] and s.listener.handshaking == set()
    # OpenSSL's error queue is left empty: Python's ssl module reads it after its own calls
    assert ssl.RAND_status()
    Session(tmp_path / "next").pump()


def test_a_client_that_leaves_mid_handshake_is_forgotten(tmp_path):
    s = Session(tmp_path)
    try:
        s.client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s.layer.data_received(s.c_out.read())
    assert s.listener.handshaking == {s.layer}
    assert s.layer.eof_received() is False and s.tcp.closed
    s.layer.connection_lost(None)
    assert s.listener.handshaking == set() and s.app.events == []


def test_tickets_resume_on_another_layer_with_the_process_keys_and_not_after_they_change(
    tmp_path,
):
    authority = CertAuthority(tmp_path)
    client = authority.client_context()
    tickets.configure(bytes(32))  # as a worker: its master's secret
    try:
        first = Session(tmp_path / "1", authority=authority, client=client)
        first.pump()
        assert first.client_reads() == b""  # a TLS 1.3 client reads its tickets after it
        assert not first.client.session_reused and first.client.session.has_ticket
        ticket = first.client.session
        # another listener's context (another worker's), the same keys: resumed
        second = Session(tmp_path / "2", authority=authority, client=client, session=ticket)
        second.pump()
        assert second.client.session_reused
        tickets.configure(bytes(range(32)))  # another secret: that ticket opens no more
        third = Session(tmp_path / "3", authority=authority, client=client, session=ticket)
        third.pump()
        assert not third.client.session_reused and third.app.events == ["made"]
    finally:
        tickets.configure(tickets.new_secret())
