"""Parsing and printing of `host[:port]` addresses (IPv4, IPv6 in brackets, names, services).

Name resolution happens here, at the edge, when a command or config line is read; the table
stores numeric addresses only, as the kernel did.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple


class Address(NamedTuple):
    host: str  # numeric IPv4 or IPv6 text
    port: int

    def __str__(self) -> str:
        return format_address(self, numeric=True)


class AddressError(ValueError):
    """Text that is not a usable `host[:port]`; `reason` says why when the syntax is not the
    whole story (a name that does not resolve, a port out of range), else it is empty."""

    def __init__(self, text: str, reason: str = "") -> None:
        super().__init__(text)
        self.reason = reason

    def explain(self, message: str) -> str:
        """`message`, followed by the reason when there is one."""
        return f"{message}: {self.reason}" if self.reason else message


def _parse_port(text: str) -> int:
    if text.isdigit():
        port = int(text)
        if 0 < port <= 65535:
            return port
        raise AddressError(text, f"port {port} out of range 1-65535")
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise AddressError(text, f"unknown service '{text}'") from None


def _resolve_host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not text or text.isdigit():
        raise AddressError(text)
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # UnicodeError: not a valid name (empty label, too long)
        raise AddressError(text, f"cannot resolve host '{text}'") from None
    # Prefer IPv4 like the original (gethostbyname), but accept an IPv6-only name.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def parse_address(text: str, default_port: int | None) -> Address:
    """Parse `host[:port]`, `[v6addr][:port]`, or a bare IPv6 literal.

    Raises AddressError (a ValueError) when the text is not an address, or when it has no
    port and `default_port` is None.
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        if end < 0 or not _ipv6(host) or (rest and not rest.startswith(":")):
            raise AddressError(text)
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1 and not _ipv6(text):  # a bare IPv6 literal has no port
        raise AddressError(text)
    port = _parse_port(port_text) if port_text else default_port
    if port is None:
        raise AddressError(text)
    return Address(_resolve_host(host), port)


_WILDCARDS = frozenset({"0.0.0.0", "::"})


def listens_overlap(a: Address, b: Address) -> bool:
    """Would listening on both addresses conflict, as the kernel refuses a second bind: the
    same port, and the same host or a wildcard of the same family (tcpvs listens with
    IPV6_V6ONLY, so `[::]` does not take IPv4 addresses)."""
    if a.port != b.port:
        return False
    if a.host == b.host:
        return True
    same_family = (":" in a.host) == (":" in b.host)
    return same_family and (a.host in _WILDCARDS or b.host in _WILDCARDS)


def format_address(addr: Address, numeric: bool = True) -> str:
    """`host:port` (IPv6 in brackets); names from the resolver and services when not numeric."""
    host, port = addr.host, str(addr.port)
    if not numeric:
        try:
            host = socket.gethostbyaddr(addr.host)[0]
        except OSError:
            pass
        try:
            port = socket.getservbyport(addr.port, "tcp")
        except OSError:
            pass
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"
