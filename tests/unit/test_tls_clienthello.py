"""The TLS ClientHello parser (tcpvs.tls.clienthello): real hellos captured from OpenSSL, curl
and Python (data/clienthellos, see capture.py there), hand-built ones for what those do not send
(GREASE, ECH, pre_shared_key, hellos over several records), and fuzzing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tcpvs
from tcpvs.tls.clienthello import (
    MAX_HELLO,
    MAX_LENGTH,
    MAX_RECORD,
    BadClientHello,
    ClientHello,
    NotTls,
    parse_client_hello,
)

DATA = Path(__file__).parent / "data" / "clienthellos"
TLS13, TLS12, TLS11, TLS10 = 0x0304, 0x0303, 0x0302, 0x0301

# name: (server_name, alpn, versions) of each captured hello (OpenSSL 3.0, curl 7.88, Python 3.11)
REAL = {
    "openssl": ("openssl.example", (), (TLS13, TLS12, TLS11, TLS10)),  # sent as Openssl.Example
    "openssl_tls12": ("tls12.example", (), (TLS12,)),  # -tls1_2: no supported_versions
    "curl": ("curl.example", ("h2", "http/1.1"), (TLS13, TLS12, TLS11, TLS10)),
    "python_sni_alpn": ("python.example", ("h2", "http/1.1"), (TLS13, TLS12)),
    "python_no_sni": (None, (), (TLS13, TLS12)),
}


def real(name: str) -> bytes:
    return (DATA / f"{name}.bin").read_bytes()


# ---------------------------------------------------------------- building hellos by hand


def vector(size_len: int, body: bytes) -> bytes:
    return len(body).to_bytes(size_len) + body


def extension(kind: int, body: bytes = b"") -> bytes:
    return kind.to_bytes(2) + vector(2, body)


def sni(name: bytes) -> bytes:
    return extension(0, vector(2, b"\x00" + vector(2, name)))


def alpn(*names: bytes) -> bytes:
    return extension(16, vector(2, b"".join(vector(1, name) for name in names)))


def supported_versions(*versions: int) -> bytes:
    return extension(43, vector(1, b"".join(v.to_bytes(2) for v in versions)))


def ech_outer(enc: bytes = bytes(32), payload: bytes = bytes(200)) -> bytes:
    # type outer, HPKE suite (HKDF-SHA256, AES-128-GCM), config_id, enc, payload
    return extension(0xFE0D, b"\x00\x00\x01\x00\x01\x2a" + vector(2, enc) + vector(2, payload))


KEY_SHARE = extension(51, vector(2, b"\x00\x1d" + vector(2, bytes(32))))
PSK = extension(41, vector(2, vector(2, b"ticket") + bytes(4)) + vector(2, vector(1, bytes(32))))


def body(
    *extensions: bytes,
    legacy: int = TLS12,
    session_id: bytes = bytes(32),
    suites: bytes = b"\x13\x01\xc0\x2f",
    compression: bytes = b"\x00",
    block: bool = True,
) -> bytes:
    """A ClientHello message body; `block=False`: without an extensions block (TLS 1.2)."""
    fixed = legacy.to_bytes(2) + bytes(range(32)) + vector(1, session_id)
    fixed += vector(2, suites) + vector(1, compression)
    return fixed + vector(2, b"".join(extensions)) if block else fixed


def records(message: bytes, size: int | list[int] = MAX_RECORD) -> bytes:
    """`message` in handshake records of `size` bytes (a list: in turn, the last one repeated)."""
    sizes = [size] if isinstance(size, int) else size
    out, pos = [], 0
    while pos < len(message):
        fragment = message[pos : pos + sizes[min(len(out), len(sizes) - 1)]]
        out.append(b"\x16\x03\x01" + vector(2, fragment))
        pos += len(fragment)
    return b"".join(out)


def message(*extensions: bytes, **fields: Any) -> bytes:
    return b"\x01" + vector(3, body(*extensions, **fields))


def hello(*extensions: bytes, size: int | list[int] = MAX_RECORD, **fields: Any) -> bytes:
    return records(message(*extensions, **fields), size)


def wrap(hello_body: bytes) -> bytes:
    """`hello_body` as a ClientHello message in records (lengths that fit it)."""
    return records(b"\x01" + vector(3, hello_body))


def with_byte(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1 :]


CHROME_LIKE = hello(
    extension(0x1A1A),  # GREASE first, empty
    sni(b"www.Example.com"),
    extension(23),
    extension(65281, b"\x00"),
    extension(10, vector(2, b"\x7a\x7a\x11\xec\x00\x1d\x00\x17")),  # GREASE, X25519MLKEM768, ...
    extension(35),
    alpn(b"\x3a\x3a", b"h2", b"http/1.1"),
    extension(51, vector(2, b"\x11\xec" + vector(2, bytes(1216)) + KEY_SHARE[6:])),
    supported_versions(0x8A8A, TLS13, TLS12),
    ech_outer(),
    extension(0x4A4A, b"\x00"),  # GREASE last, one byte
)


def parse(data: bytes | bytearray) -> ClientHello | None:
    """parse_client_hello, checking what holds for every input: a result is the same from its
    own bytes alone and with anything after them; its server_name is a clean name."""
    result = parse_client_hello(data)
    if result is not None:
        assert 0 < result.length <= len(data)
        mine = bytes(data[: result.length])
        assert parse_client_hello(mine) == result
        assert parse_client_hello(mine + b"\x17\x03\x03\x00\x01?") == result
        name = result.server_name
        assert name is None or (name == name.lower() and name.isascii() and " " not in name)
    return result


def refused(data: bytes) -> BadClientHello:
    with pytest.raises(BadClientHello) as caught:
        parse_client_hello(data)
    return caught.value


def not_tls(data: bytes) -> NotTls:
    with pytest.raises(NotTls) as caught:
        parse_client_hello(data)
    return caught.value


# ---------------------------------------------------------------- real hellos


@pytest.mark.parametrize("name", REAL)
def test_real_hello(name: str) -> None:
    data = real(name)
    server_name, protocols, versions = REAL[name]
    assert parse(data) == ClientHello(server_name, protocols, versions, False, len(data))


@pytest.mark.parametrize("name", [*REAL, "chrome_like", "many_records"])
def test_byte_at_a_time(name: str) -> None:
    handmade = {"chrome_like": CHROME_LIKE, "many_records": hello(sni(b"a"), size=[50, 1, 3, 99])}
    data = handmade[name] if name in handmade else real(name)
    growing = bytearray()
    for byte in data[:-1]:
        growing.append(byte)
        assert parse_client_hello(growing) is None
    growing.append(data[-1])
    assert parse_client_hello(growing) == parse_client_hello(data)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 100, [3, 1000], [300, 1, 2]])
def test_real_hello_over_many_records(size: int | list[int]) -> None:
    data = real("curl")
    split = records(data[5:], size)
    assert parse(split) == ClientHello(
        "curl.example", ("h2", "http/1.1"), (TLS13, TLS12, TLS11, TLS10), False, len(split)
    )
    assert all(parse_client_hello(split[:cut]) is None for cut in range(len(split)))


def test_bytes_after_the_hello_are_not_read() -> None:
    class Watched(bytearray):
        """Notes the furthest byte read."""

        furthest = 0

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, slice):
                stop = len(self) if key.stop is None else min(key.stop, len(self))
                self.furthest = max(self.furthest, stop)
            else:
                self.furthest = max(self.furthest, key + 1)
            return super().__getitem__(key)

    for data in (real("openssl"), hello(sni(b"a.example"), size=[2, 7, 40])):
        watched = Watched(data + b"\x17\x03\x03\x00\x05early" + bytes(100))
        assert parse_client_hello(watched).length == len(data)
        assert watched.furthest == len(data)


# ---------------------------------------------------------------- hand-built hellos


def test_grease_ech_and_a_post_quantum_key_share() -> None:
    # GREASE extensions are unknown ones, GREASE versions and protocols are left out; with ECH
    # the name is the outer, public one.
    assert parse(CHROME_LIKE) == ClientHello(
        "www.example.com", ("h2", "http/1.1"), (TLS13, TLS12), True, len(CHROME_LIKE)
    )


def test_an_inner_ech_hello_names_the_real_server() -> None:
    data = hello(sni(b"private.example"), extension(0xFE0D, b"\x01"))
    assert parse(data) == ClientHello("private.example", (), (TLS12,), False, len(data))


def test_two_grease_extensions_but_not_the_same_twice() -> None:
    assert parse(hello(extension(0x0A0A), sni(b"a"), extension(0xDADA, b"x"))) is not None
    assert "extension 0x0a0a twice" in str(refused(hello(extension(0x0A0A), extension(0x0A0A))))


def test_tls12_hello_without_extensions() -> None:
    data = hello(block=False, session_id=b"")
    assert parse(data) == ClientHello(None, (), (TLS12,), False, len(data))


def test_padding_session_ticket_and_pre_shared_key_last() -> None:
    ticket = extension(35, bytes(range(256)) * 80)  # 20 KiB: the hello spans two records
    data = hello(sni(b"t.example"), ticket, extension(21, bytes(300)), KEY_SHARE, PSK)
    assert len(data) > MAX_RECORD + 5
    assert parse(data) == ClientHello("t.example", (), (TLS12,), False, len(data))
    error = refused(hello(PSK, sni(b"t.example")))
    assert str(error) == "pre_shared_key is not the last extension"


def test_sslv3_legacy_version_is_reported_as_is() -> None:
    assert parse(hello(block=False, legacy=0x0300)).versions == (0x0300,)


FIXED = len(body())  # a message body with an empty extensions block
LARGEST = message(extension(21, bytes(MAX_HELLO - 4 - FIXED - 4)))  # padding up to the limit


def test_size_limits() -> None:
    assert len(LARGEST) == MAX_HELLO
    assert parse(records(LARGEST)).length == MAX_HELLO + 4 * 5
    # One byte more is refused from the message header alone, before any of the body is in.
    too_large = hello(extension(21, bytes(MAX_HELLO - 4 - FIXED - 3)))
    assert "larger than 65536" in str(refused(too_large[:9]))
    # The record headers count too: not 64 KiB in 1-byte records, but a small hello is fine.
    assert "too many records" in str(refused(records(LARGEST, 1)))
    assert parse(hello(sni(b"a.example"), size=1)) is not None


@given(st.lists(st.integers(1, MAX_RECORD), min_size=1, max_size=6))
@settings(max_examples=50, deadline=None)
def test_never_more_than_max_length_is_asked_for(sizes: list[int]) -> None:
    stream = records(LARGEST, sizes)
    try:
        result = parse_client_hello(stream[:MAX_LENGTH])
    except BadClientHello as exc:
        assert "too many records" in str(exc)
        assert len(stream) > MAX_LENGTH
    else:
        assert result is not None and result.length == len(stream) <= MAX_LENGTH


# ---------------------------------------------------------------- server names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"Example.COM", "example.com"),
        (b"example.com.", "example.com"),  # one trailing dot: the same host
        (b"a_b-c.example", "a_b-c.example"),
        (b"xn--bcher-kva.example", "xn--bcher-kva.example"),
        (b"localhost", "localhost"),
        (b"192.0.2.1", "192.0.2.1"),  # an IPv4 literal (RFC 6066 forbids it) reads as a name
        (b"a" * 63 + b".example", "a" * 63 + ".example"),
        ((b"a" * 62 + b".") * 4 + b"a", ("a" * 62 + ".") * 4 + "a"),  # 253 characters
    ],
)
def test_server_name(name: bytes, expected: str) -> None:
    assert parse(hello(sni(name))).server_name == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (b"", "empty host_name"),
        (b".", "empty host_name"),
        (b"example.com..", "empty label"),
        (b"a..example", "empty label"),
        (b".example", "empty label"),
        (b"a" * 64 + b".example", "over 63"),
        ((b"a" * 62 + b".") * 4 + b"ab", "254 characters"),
        (b"a b.example", "byte 0x20"),
        (b"a\x00.example", "byte 0x00"),
        (b"example.com\x00evil.example", "byte 0x00"),
        (b"caf\xc3\xa9.example", "byte 0xc3"),
        (b"example.com:443", "byte 0x3a"),
        (b"[2001:db8::1]", "byte 0x5b"),
        (b"*.example.com", "byte 0x2a"),
        (b"a/b", "byte 0x2f"),
    ],
)
def test_server_name_refused(name: bytes, reason: str) -> None:
    assert reason in str(refused(hello(sni(name))))


@pytest.mark.parametrize(
    ("ext", "reason"),
    [
        (extension(0), "truncated server_name list length"),
        (extension(0, vector(2, b"")), "empty server_name list"),
        (extension(0, vector(2, b"\x01" + vector(2, b"a.example"))), "not of type host_name"),
        (extension(0, vector(2, (b"\x00" + vector(2, b"a.example")) * 2)), "more than one"),
        (extension(0, vector(2, b"\x00" + vector(2, b"a")) + b"\x00"), "bytes after server_name"),
        (extension(0, vector(2, b"\x00\x00\x0aa.example")), "truncated host_name"),
        (extension(0, vector(2, b"\x00\x00")), "truncated host_name length"),
    ],
)
def test_server_name_extension_refused(ext: bytes, reason: str) -> None:
    assert reason in str(refused(hello(ext)))


# ---------------------------------------------------------------- malformed hellos


GOOD_BODY = body(sni(b"a.example"))

MALFORMED = [
    # records
    (b"\x16\x03\x01\x00\x00", "empty handshake record"),
    (b"\x16\x03\x01\x40\x01", "a record of 16385 bytes"),
    (b"\x16\x03\x01\x00\x01\x01\x17", "record of type 23 inside"),
    (b"\x16\x03\x01\x00\x01\x01\x16\x02", "record of version 2.x inside"),
    (with_byte(hello(sni(b"a"), size=20), 25, 0x17), "record of type 23 inside"),
    (records(b"\x01" + vector(3, GOOD_BODY) + b"\x14\x00\x00\x00"), "ends inside a record"),
    # the handshake message
    (b"\x16\x03\x01\x00\x01\x02", "type 2, not ClientHello"),
    (wrap(b""), "truncated legacy_version"),
    (wrap(GOOD_BODY[:-1]), "truncated extensions"),
    (wrap(GOOD_BODY + b"\x00"), "bytes after extensions"),
    (wrap(GOOD_BODY[:40]), "truncated legacy_session_id"),
    (wrap(body(legacy=0x0203)), "legacy_version 0x0203"),
    (wrap(body(session_id=bytes(33))), "legacy_session_id longer than 32"),
    (wrap(body(suites=b"")), "cipher_suites of 0 bytes"),
    (wrap(body(suites=b"\x13\x01\xc0")), "cipher_suites of 3 bytes"),
    (wrap(body(compression=b"")), "no legacy_compression_methods"),
    (wrap(body(block=False) + b"\x00"), "truncated extensions length"),
    # extensions
    (hello(sni(b"a.example"), sni(b"b.example")), "server_name twice"),
    (hello(extension(23), extension(23)), "extension 0x0017 twice"),
    (wrap(body()[:-2] + b"\x00\x01\x00"), "truncated extension type"),
    (wrap(body()[:-2] + b"\x00\x05\x00\x17\x00\x02\x00"), "truncated extension 0x0017"),
    (hello(extension(16, vector(2, b""))), "empty ALPN protocol_name_list"),
    (hello(alpn(b"h2", b"")), "empty ALPN protocol name"),
    (hello(extension(16, vector(2, b"\x05h2"))), "truncated ALPN protocol name"),
    (hello(supported_versions()), "supported_versions list of 0 bytes"),
    (hello(extension(43, vector(1, b"\x03\x04\x03"))), "supported_versions list of 3 bytes"),
    (hello(extension(43, vector(1, b"\x03\x04") + b"\x00")), "bytes after supported_versions"),
    (hello(extension(0xFE0D)), "truncated ECHClientHello type"),
    (hello(extension(0xFE0D, b"\x02")), "ECHClientHello of type 2"),
    (hello(extension(0xFE0D, b"\x01\x00")), "bytes after an inner ECHClientHello"),
    (hello(ech_outer(payload=b"")), "empty ECH payload"),
    (hello(extension(0xFE0D, b"\x00\x00\x01\x00\x01")), "truncated ECH cipher_suite"),
    (hello(extension(0xFE0D, b"\x00\x00\x01\x00\x01\x2a\x00\x20")), "truncated ECH enc"),
    (hello(extension(0xFE0D, ech_outer()[4:] + b"\x00")), "bytes after ECH payload"),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED)
def test_malformed(data: bytes, reason: str) -> None:
    assert reason in str(refused(data))


def test_refused_as_soon_as_the_bytes_tell() -> None:
    assert "type 2" in str(refused(b"\x16\x03\x01\x00\x50\x02"))  # a ServerHello's first byte
    assert "record of 16385" in str(refused(b"\x16\x03\x01\x40\x01"))
    assert "ends inside a record" in str(refused(b"\x16\x03\x01\x00\x50\x01\x00\x00\x01\x00\x00"))


def test_errors_are_tcpvs_errors_and_value_errors() -> None:
    for error in (refused(b"\x16\x03\x01\x00\x00"), not_tls(b"\x00")):
        assert isinstance(error, tcpvs.TcpvsError) and isinstance(error, ValueError)


# ---------------------------------------------------------------- not TLS at all


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"G",  # one byte decides it
        b"POST /form HTTP/1.0\r\n",
        b"UPDATEREDIRECTREF /x HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)
def test_plain_http(data: bytes) -> None:
    error = not_tls(data)
    assert error.plain_http is True
    assert "plain HTTP" in str(error)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # SSLv2-compatible ClientHello (RFC 5246 E.2), as old clients sent it
        (bytes.fromhex("802e0103010015000000100100800700c0030080060040020080040080"), "SSL 2.0"),
        (b"\x80", "SSL 2.0"),
        (b"\x00\x01\x02", "first byte 0x00"),
        (b"\x17\x03\x03\x00\x10", "first byte 0x17"),  # application data first
        (b"GET/ HTTP/1.1\r\n", "first byte 0x47"),  # no method token and space
        (b"A" * 30, "first byte 0x41"),
        (b"\x16\x00\x02", "version 0.x"),
        (b"\x16\x16\x03\x01", "version 22.x"),
    ],
)
def test_not_tls(data: bytes, reason: str) -> None:
    error = not_tls(data)
    assert error.plain_http is False
    assert reason in str(error)


def test_nothing_yet() -> None:
    assert parse_client_hello(b"") is None
    assert parse_client_hello(bytearray()) is None


# ---------------------------------------------------------------- fuzzing

VALID = [real(name) for name in REAL] + [CHROME_LIKE, hello(block=False, session_id=b"")]


def outcome(data: bytes) -> ClientHello | None:
    """What parsing `data` gives, None when refused: no other exception escapes."""
    try:
        return parse(data)
    except (NotTls, BadClientHello):
        return None


@given(st.binary(max_size=400))
@settings(max_examples=400, deadline=None)
def test_random_bytes(data: bytes) -> None:
    outcome(data)
    outcome(b"\x16\x03\x01" + data)
    outcome(wrap(data))


mutations = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=8)


def mutate(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, byte in changes:
        out[at % len(out)] = byte
    return bytes(out)


@given(st.sampled_from(VALID), mutations, st.integers(0, 3))
@settings(max_examples=400, deadline=None)
def test_mutated_hellos(data: bytes, changes: list[tuple[int, int]], cut: int) -> None:
    outcome(mutate(data, changes))
    # Lengths made right again after the change, so that it reaches the fields under them;
    # some bytes cut off or added at the end of the body too.
    message_body = mutate(data[9:], changes)
    outcome(wrap(message_body[: len(message_body) - cut] + bytes(cut % 2)))


@given(st.sampled_from(VALID), st.lists(st.integers(1, 600), min_size=1, max_size=4), st.data())
@settings(max_examples=300, deadline=None)
def test_truncations_of_a_valid_hello_ask_for_more(
    data: bytes, sizes: list[int], draw: st.DataObject
) -> None:
    assert int.from_bytes(data[3:5]) == len(data) - 5  # one record: data[5:] is the message
    split = records(data[5:], sizes)
    whole = parse(split)
    assert whole is not None and whole.length == len(split)
    cut = draw.draw(st.integers(0, len(split) - 1))
    assert parse_client_hello(split[:cut]) is None
