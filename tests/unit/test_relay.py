"""A relay without sockets: it counts where bytes cross, passes exactly what it is told to,
passes an end on, and reads its source exactly when nobody has a reason to stop it."""

from __future__ import annotations

from tcpvs.exchange.base import Exchange, Port, Site
from tcpvs.proxy.relay import ClientToServer, ServerToClient
from tests.unit.exchange_port import service


class Transport:
    """Records writes, the end written, and the reading state."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.eof = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written += data

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        assert self.reading, "paused twice"
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading, "resumed twice"
        self.reading = True


class Recorder(Exchange):
    """What reaches the exchange."""

    def __init__(self, site: Site) -> None:
        super().__init__(site, Port())
        self.events: list[tuple[str, bytes]] = []

    def client_data(self, data: bytes) -> None:
        self.events.append(("data", data))

    def server_data(self, data: bytes) -> None:
        self.events.append(("data", data))

    def client_ended(self) -> None:
        self.events.append(("end", b""))

    def active(self) -> None:
        pass


class Owner:
    def __init__(self) -> None:
        self.passed: list[bytes] = []
        self.failed = 0

    def relay_passed(self, relay, rest: bytes) -> None:
        self.passed.append(rest)

    def relay_failed(self, relay) -> None:
        self.failed += 1


def relay(kind=ClientToServer):
    svc = service("    server = 127.0.0.1:9001 1")
    owner, src, dst = Owner(), Transport(), Transport()
    site = Site(svc)
    r = kind(owner, site, Recorder(site))
    r.set_source(src, None)
    r.set_destination(dst, svc.servers[0], False)
    return r, owner, src, dst, svc


def test_bytes_are_counted_where_they_cross_a_socket():
    r, _, _, _, svc = relay()
    r.received(b"12345")  # read from the client
    r.write(b"123")  # written to the server
    assert (svc.stats.bytes_in, svc.servers[0].bytes_in) == (5, 3)
    s, _, _, _, svc = relay(ServerToClient)
    s.received(b"1234")
    s.write(b"12")
    assert (svc.servers[0].bytes_out, svc.stats.bytes_out) == (4, 2)


def test_passing_a_length_takes_exactly_it_and_hands_back_the_rest():
    r, owner, _, dst, _ = relay()
    r.pass_through(5)
    r.received(b"abc")
    r.received(b"defgh")
    assert bytes(dst.written) == b"abcde" and owner.passed == [b"fgh"]
    r.received(b"next")  # the exchange sees bytes again
    assert r.exchange.events == [("data", b"next")]


def test_passing_to_the_end_passes_the_end_on_even_one_that_came_before():
    r, owner, _, dst, _ = relay()
    r.pass_through(-1)
    r.received(b"bytes")
    r.source_ended()
    assert bytes(dst.written) == b"bytes" and dst.eof and owner.passed == [b""]
    early, owner, _, dst, _ = relay()
    early.source_ended()  # before the tunnel: the exchange hears it, the relay remembers
    early.pass_through(-1)
    assert dst.eof and owner.passed == [b""] and early.exchange.events == [("end", b"")]


def test_a_source_that_ends_short_of_the_length_fails():
    r, owner, _, _, _ = relay()
    r.pass_through(10)
    r.received(b"abc")
    r.source_ended()
    assert owner.failed == 1


def test_the_source_is_read_only_when_neither_held_nor_blocked():
    r, _, src, _, _ = relay()
    r.hold(True)
    assert not src.reading
    r.set_blocked(True)
    r.hold(False)
    assert not src.reading  # still blocked
    r.set_blocked(False)
    assert src.reading


def test_a_new_source_starts_paused_while_blocked_and_the_old_one_reads_again():
    s, _, old, _, _ = relay(ServerToClient)
    s.set_blocked(True)  # the client reads slower than the server sends
    assert not old.reading
    new = Transport()
    s.set_source(new, None)  # the next request's server connection
    assert old.reading and not new.reading
