"""ipvsadm's number, address and port conversions, with the C library's exact semantics.

Parsing (strtol, atoi, inet_aton, host and service names) and naming (addresses and ports
to host and service names unless numeric). Resolution goes through the same libc calls as
ipvsadm (gethostbyname, gethostbyaddr, getservbyname, getservbyport).
"""

from __future__ import annotations

import re
import socket

from tcpvs.ipvs import uapi

_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)\Z")
_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_PROTO_NAMES = {uapi.IPPROTO_TCP: "tcp", uapi.IPPROTO_UDP: "udp", uapi.IPPROTO_SCTP: "sctp"}

SERVICE_NONE, SERVICE_ADDR, SERVICE_PORT = 0, 1, 2


def strtol(text: str) -> int | None:
    """strtol(s, &end, 10) that must consume all of s; None when it does not or overflows."""
    m = _STRTOL.match(text)
    if m is None:
        return None
    value = int(m.group(1))
    return value if _LONG_MIN <= value <= _LONG_MAX else None


def string_to_number(text: str, lo: int, hi: int) -> int:
    """ipvsadm's string_to_number: the value, or -1 when invalid or out of [lo, hi]."""
    value = strtol(text)
    return value if value is not None and lo <= value <= hi else -1


def atoi(text: str) -> int:
    m = _ATOI.match(text)
    if m is None:
        return 0
    value = max(_LONG_MIN, min(_LONG_MAX, int(m.group(1))))
    return (value + 2**31) % 2**32 - 2**31  # (int) of a long


def str_is_digit(text: str) -> bool:
    """True for all-digit strings, and (as in C) for the empty string."""
    return all("0" <= c <= "9" for c in text)


def inet_aton(text: str) -> bytes | None:
    """glibc inet_aton: accepts 127.1, 0x7f.1, octal, and trailing blanks + anything."""
    try:
        return socket.inet_aton(text)
    except (OSError, ValueError):
        return None


def host_to_addr(name: str) -> bytes | None:
    """gethostbyname(name) to an IPv4 address (first of the list)."""
    try:
        return socket.inet_aton(socket.gethostbyname(name))
    except (OSError, UnicodeError, ValueError):
        return None


def service_to_port(name: str, protocol: int) -> int:
    proto = _PROTO_NAMES.get(protocol)
    if proto is None:
        return -1
    try:
        return socket.getservbyname(name, proto)
    except (OSError, UnicodeError, ValueError):
        return -1


def inet_pton6(text: str) -> bytes | None:
    try:
        return socket.inet_pton(uapi.AF_INET6, text)
    except (OSError, ValueError):
        return None


def parse_service(buf: str, protocol: int) -> tuple[int, int, bytes, int]:
    """ipvsadm's parse_service: (result bits, af, 4- or 16-byte address, port).

    Quirks kept: all-digit strings are refused; `[addr]` must be followed by `:port`; in
    `[1.2.3.4]:80` the port is lost (the bracket form only carries ports for IPv6); an
    unbracketed IPv6 literal has no port; otherwise the port follows the last colon.
    """
    if str_is_digit(buf):
        return SERVICE_NONE, 0, b"", 0
    port_text: str | None = None
    if buf.startswith("["):
        host, sep, after = buf[1:].partition("]")
        if not sep or not after.startswith(":"):
            return SERVICE_NONE, 0, b"", 0
        buf, port_text = host, after[1:]
    raw6 = inet_pton6(buf)
    if raw6 is not None:
        af, raw = uapi.AF_INET6, raw6
    else:
        host, sep, tail = buf.rpartition(":")
        port_text = tail if sep else None
        host = host if sep else buf
        raw4 = inet_aton(host) or host_to_addr(host)
        if raw4 is None:
            return SERVICE_NONE, 0, b"", 0
        af, raw = uapi.AF_INET, raw4
    if port_text is None:
        return SERVICE_ADDR, af, raw, 0
    port = string_to_number(port_text, 0, 65535)
    if port == -1:
        port = service_to_port(port_text, protocol)
    if port == -1:
        return SERVICE_NONE, af, raw, 0
    return SERVICE_ADDR | SERVICE_PORT, af, raw, port


# ---- naming -----------------------------------------------------------------------------


def addr_to_anyname(af: int, addr: str) -> str:
    try:
        return socket.gethostbyaddr(addr)[0]
    except (OSError, UnicodeError, ValueError):
        return addr


def port_to_anyname(port: int, protocol: int) -> str:
    proto = _PROTO_NAMES.get(protocol)
    if proto is not None:
        try:
            return socket.getservbyport(port, proto)
        except (OSError, OverflowError):
            pass
    return str(port)


def addrport_to_anyname(af: int, addr: str, port: int, protocol: int, numeric: bool) -> str:
    """`addr:port` (IPv6 in brackets), names unless numeric; snprintf'd into 60 bytes."""
    host = addr if numeric else addr_to_anyname(af, addr)
    service = str(port) if numeric else port_to_anyname(port, protocol)
    text = f"[{host}]:{service}" if af != uapi.AF_INET else f"{host}:{service}"
    return text[:59]
