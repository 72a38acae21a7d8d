"""The TLS ClientHello a connection starts with, read without decrypting anything: the name
(SNI) and protocols (ALPN) a connection can be routed by before its bytes go to a server.

Sans-IO: `parse_client_hello` looks at the bytes received so far and says "more", "here it
is" or "refused"; called again with more bytes, it starts over (a hello is small: MAX_LENGTH).
The hello may be spread over several handshake records (RFC 8446 5.1), each at most 2^14
bytes. Every length in the records, the message and the fields read must add up exactly, so a
hello that a server could read differently from us is refused rather than routed.

The host name is what routing rules match, so it is held to what a DNS name can be (RFC 6066
3: ASCII, no trailing dot): letters, digits, '-', '_' (not LDH, but real names have it) and
dots between labels of 1 to 63 characters, 253 characters at most. One trailing dot is
dropped rather than refused: "example.com." is the same host, and tcpvs.tls.certs matches
names without it. Anything else (NUL, space, ':', non-ASCII, an IP literal's brackets) is
refused, never passed on to a rule. The name is lower-cased (DNS names ignore case).

GREASE values (RFC 8701) pass as the unknown extensions they are, and are left out of
`versions` and `alpn`. With ECH (encrypted_client_hello) the server_name seen here is the
outer, public name, which is what a router in front of the ECH server routes by.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcpvs.errors import TcpvsError

HANDSHAKE = 22  # the content type of handshake records
CLIENT_HELLO = 1  # the handshake message type
MAX_RECORD = 2**14  # the largest plaintext record fragment (RFC 8446 5.1, RFC 5246 6.2.1)
# The largest ClientHello message accepted (its 4-byte header included). One record's 16 KiB is
# not enough: post-quantum key shares already take a hello to ~1.8 KB (X25519MLKEM768 alone is
# 1216 bytes), clients offering several of them, large PSK identities or session tickets (up to
# 64 KiB each) and ECH (a second, encrypted hello inside the first) add up, and TLS lets the hello
# span records. 64 KiB is what the hello's extensions block can hold (a 16-bit length), so no
# plausible hello is refused, and a connection still cannot make us buffer without bound.
MAX_HELLO = 64 * 1024
# The most bytes a ClientHello's records may take: MAX_HELLO and the 5-byte headers of its
# records (of hundreds of them). Once that many bytes are in, parse_client_hello decides: it
# never asks for more, so it bounds what a caller buffers.
MAX_LENGTH = MAX_HELLO + 4096

EXT_SERVER_NAME = 0x0000
EXT_ALPN = 0x0010
EXT_PRE_SHARED_KEY = 0x0029
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_ECH = 0xFE0D
_EXT_NAMES = {
    EXT_SERVER_NAME: "server_name",
    EXT_ALPN: "application_layer_protocol_negotiation",
    EXT_PRE_SHARED_KEY: "pre_shared_key",
    EXT_SUPPORTED_VERSIONS: "supported_versions",
    EXT_ECH: "encrypted_client_hello",
}

_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_HOST_BYTES = b"-._0123456789" + _LETTERS
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789" + _LETTERS)  # an HTTP method's (RFC 9110 5.6.2)
_LONGEST_METHOD = 20  # more than any registered HTTP method (UPDATEREDIRECTREF: 17)


class ClientHelloError(TcpvsError, ValueError):
    """Bytes that are no acceptable ClientHello; str() says what is wrong (for logs)."""


class NotTls(ClientHelloError):
    """The bytes are not a TLS handshake at all. `plain_http`: they begin like an HTTP/1
    request line (a method token, then a space), so the client may be answered "400: plain
    HTTP sent to a TLS port" in HTTP."""

    def __init__(self, reason: str, plain_http: bool = False) -> None:
        super().__init__(reason)
        self.plain_http = plain_http


class BadClientHello(ClientHelloError):
    """TLS records, but not a ClientHello we accept: malformed, or larger than the limits."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What routing needs of a ClientHello.

    server_name: the SNI host name (lower case, no trailing dot), None without one.
    alpn: the ALPN protocol names in the client's order (decoded byte for byte, latin-1).
    versions: supported_versions in the client's order, else (legacy_version,): 0x0304 is
    TLS 1.3, 0x0303 TLS 1.2.
    ech: an outer ECH hello: server_name is the public name, the one asked for is encrypted.
    length: the bytes its records take at the start of the data (what follows is not read).
    """

    server_name: str | None
    alpn: tuple[str, ...]
    versions: tuple[int, ...]
    ech: bool
    length: int


def parse_client_hello(data: bytes | bytearray) -> ClientHello | None:
    """The ClientHello at the start of `data` (the first bytes of a connection), None while
    more bytes are needed. NotTls if the bytes are no TLS handshake, BadClientHello if they
    are but no acceptable ClientHello; both are raised as soon as the bytes tell.
    """
    n = len(data)
    if n == 0:
        return None
    if data[0] != HANDSHAKE:
        raise _not_tls(data)
    if n > 1 and data[1] != 3:
        raise NotTls(f"a handshake record of version {data[1]}.x: not TLS")
    message = bytearray()  # the handshake message, gathered from the records' fragments
    size = -1  # its size, header included, once its header is in
    pos = 0
    while True:
        if pos + 6 > MAX_LENGTH:  # not even a 1-byte record would fit
            raise _too_large()
        length = _record_length(data, pos, n)
        if length < 0:
            return None
        end = pos + 5 + length
        if end > MAX_LENGTH:
            raise _too_large()
        message += data[pos + 5 : end]
        if message and message[0] != CLIENT_HELLO:
            raise BadClientHello(f"handshake message type {message[0]}, not ClientHello (1)")
        if size < 0 and len(message) >= 4:
            size = 4 + int.from_bytes(message[1:4])
            if size > MAX_HELLO:
                raise _too_large()
        if 0 <= size < len(message):
            # Nothing may follow the hello in its record: the client waits for the server.
            raise BadClientHello("the ClientHello ends inside a record")
        if end > n:
            return None
        if len(message) == size:
            return _client_hello(bytes(message[4:]), end)
        pos = end


def _not_tls(data: bytes | bytearray) -> NotTls:
    first = data[0]
    method, space, _ = bytes(data[: _LONGEST_METHOD + 1]).partition(b" ")
    if method and _TCHAR.issuperset(method) and (space or len(method) <= _LONGEST_METHOD):
        return NotTls("plain HTTP (a request line, not a TLS record)", plain_http=True)
    if first & 0x80:
        return NotTls(f"first byte 0x{first:02x}: SSL 2.0 record framing (SSLv2-compatible hello)")
    return NotTls(f"first byte 0x{first:02x}: not a TLS handshake record (0x16)")


def _too_large() -> BadClientHello:
    return BadClientHello(f"ClientHello larger than {MAX_HELLO} bytes (or in too many records)")


def _record_length(data: bytes | bytearray, pos: int, n: int) -> int:
    """The length of the record at data[pos:], -1 while its header is incomplete; what of the
    header is in is checked."""
    if pos < n and data[pos] != HANDSHAKE:
        raise BadClientHello(f"a record of type {data[pos]} inside the ClientHello")
    if pos + 1 < n and data[pos + 1] != 3:
        raise BadClientHello(f"a record of version {data[pos + 1]}.x inside the ClientHello")
    if pos + 5 > n:
        return -1
    length = int.from_bytes(data[pos + 3 : pos + 5])
    if length == 0:
        raise BadClientHello("an empty handshake record")  # RFC 8446 5.1: MUST NOT be sent
    if length > MAX_RECORD:
        raise BadClientHello(f"a record of {length} bytes (at most {MAX_RECORD})")
    return length


class _Reader:
    """A cursor over buf[pos:end]; each read checks that its bytes are there."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def left(self) -> int:
        return self.end - self.pos

    def skip(self, size: int, what: str) -> int:
        """Pass `size` bytes; where they start."""
        start = self.pos
        if size > self.end - start:
            raise BadClientHello(f"truncated {what}")
        self.pos = start + size
        return start

    def uint(self, size: int, what: str) -> int:
        start = self.skip(size, what)
        return int.from_bytes(self.buf[start : self.pos])

    def vector(self, size_len: int, what: str) -> _Reader:
        """The vector that follows (RFC 8446 3.4): a `size_len`-byte length, then the bytes."""
        length = self.uint(size_len, f"{what} length")
        start = self.skip(length, what)
        return _Reader(self.buf, start, self.pos)

    def last_vector(self, size_len: int, what: str) -> _Reader:
        """The vector that follows, which must be all that is left."""
        vector = self.vector(size_len, what)
        if self.pos != self.end:
            raise BadClientHello(f"bytes after {what}")
        return vector

    def rest(self) -> bytes:
        return self.buf[self.pos : self.end]


def _client_hello(body: bytes, length: int) -> ClientHello:
    """The ClientHello whose message body (RFC 8446 4.1.2, RFC 5246 7.4.1.2) is `body`."""
    hello = _Reader(body, 0, len(body))
    legacy_version = hello.uint(2, "legacy_version")
    if legacy_version >> 8 != 3:
        raise BadClientHello(f"legacy_version 0x{legacy_version:04x}: not SSL 3 or TLS")
    hello.skip(32, "random")
    if hello.vector(1, "legacy_session_id").left() > 32:
        raise BadClientHello("legacy_session_id longer than 32 bytes")
    suites = hello.vector(2, "cipher_suites").left()
    if suites == 0 or suites % 2:
        raise BadClientHello(f"cipher_suites of {suites} bytes")
    if hello.vector(1, "legacy_compression_methods").left() == 0:
        raise BadClientHello("no legacy_compression_methods")
    server_name: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[int, ...] = (legacy_version,)
    ech = False
    if hello.left():  # before TLS 1.3 the block is optional: a hello may end here
        extensions = hello.last_vector(2, "extensions")
        seen: set[int] = set()
        while extensions.left():
            if EXT_PRE_SHARED_KEY in seen:  # RFC 8446 4.2.11: it MUST be the last one
                raise BadClientHello("pre_shared_key is not the last extension")
            kind = extensions.uint(2, "extension type")
            name = _EXT_NAMES.get(kind, f"extension 0x{kind:04x}")
            ext = extensions.vector(2, name)
            if kind in seen:  # RFC 8446 4.2: would two servers read the same one?
                raise BadClientHello(f"{name} twice")
            seen.add(kind)
            if kind == EXT_SERVER_NAME:
                server_name = _server_name(ext)
            elif kind == EXT_ALPN:
                alpn = _alpn(ext)
            elif kind == EXT_SUPPORTED_VERSIONS:
                versions = _versions(ext)
            elif kind == EXT_ECH:
                ech = _ech_outer(ext)
    return ClientHello(server_name, alpn, versions, ech, length)


def _server_name(ext: _Reader) -> str:
    """The host_name of a server_name extension (RFC 6066 3). Exactly one name, of type
    host_name: what OpenSSL accepts, so that the server reads the name we routed by."""
    names = ext.last_vector(2, "server_name list")
    if not names.left():
        raise BadClientHello("empty server_name list")
    if names.uint(1, "server_name type") != 0:
        raise BadClientHello("a server_name not of type host_name")
    host_name = names.vector(2, "host_name").rest()
    if names.left():
        raise BadClientHello("more than one server_name")
    return _host_name(host_name)


def _host_name(raw: bytes) -> str:
    name = raw[:-1] if raw.endswith(b".") else raw
    if not name:
        raise BadClientHello("empty host_name")
    if len(name) > 253:
        raise BadClientHello(f"host_name of {len(name)} characters (at most 253)")
    bad = name.translate(None, _HOST_BYTES)
    if bad:
        raise BadClientHello(f"byte 0x{bad[0]:02x} in host_name (only letters, digits, -_.)")
    if any(not label or len(label) > 63 for label in name.split(b".")):
        raise BadClientHello("host_name with an empty label or one over 63 characters")
    return name.decode("ascii").lower()


def _alpn(ext: _Reader) -> tuple[str, ...]:
    """The protocol names (RFC 7301 3.1), GREASE ones left out."""
    listed = ext.last_vector(2, "ALPN protocol_name_list")
    if not listed.left():
        raise BadClientHello("empty ALPN protocol_name_list")
    names = []
    while listed.left():
        name = listed.vector(1, "ALPN protocol name").rest()
        if not name:
            raise BadClientHello("empty ALPN protocol name")
        if not (len(name) == 2 and _grease(int.from_bytes(name))):
            names.append(name.decode("latin-1"))
    return tuple(names)


def _versions(ext: _Reader) -> tuple[int, ...]:
    """The versions of supported_versions (RFC 8446 4.2.1), GREASE ones left out."""
    listed = ext.last_vector(1, "supported_versions list")
    if not listed.left() or listed.left() % 2:
        raise BadClientHello(f"supported_versions list of {listed.left()} bytes")
    versions = []
    while listed.left():
        version = listed.uint(2, "version")
        if not _grease(version):
            versions.append(version)
    return tuple(versions)


def _grease(value: int) -> bool:
    """A GREASE value (RFC 8701): 0x0A0A, 0x1A1A, ... 0xFAFA, there to be ignored."""
    return value & 0x0F0F == 0x0A0A and value >> 12 == (value >> 4) & 0x0F


def _ech_outer(ext: _Reader) -> bool:
    """Whether an encrypted_client_hello extension (draft-ietf-tls-esni, 5) is an outer
    one, whose hello carries the public name; an inner one is an ECH hello already decrypted
    (passed on by a client-facing server): its server_name is the one asked for."""
    kind = ext.uint(1, "ECHClientHello type")
    if kind == 1:
        if ext.left():
            raise BadClientHello("bytes after an inner ECHClientHello")
        return False
    if kind != 0:
        raise BadClientHello(f"ECHClientHello of type {kind}")
    ext.skip(5, "ECH cipher_suite and config_id")
    ext.vector(2, "ECH enc")
    if not ext.last_vector(2, "ECH payload").left():
        raise BadClientHello("empty ECH payload")
    return True
