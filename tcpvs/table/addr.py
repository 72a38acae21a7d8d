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


def _parse_port(text: str) -> int:
    if text.isdigit():
        port = int(text)
        if 0 < port <= 65535:
            return port
        raise ValueError(text)
    return socket.getservbyname(text, "tcp")  # raises OSError for unknown names


def _resolve_host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not text or text.isdigit():
        raise ValueError(text)
    infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    # Prefer IPv4 like the original (gethostbyname), but accept an IPv6-only name.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def parse_address(text: str, default_port: int | None) -> Address:
    """Parse `host[:port]`, `[v6addr][:port]`, or a bare IPv6 literal.

    Raises ValueError when the text is not an address, or when it has no port and
    `default_port` is None.
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(text)
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(text)
            port_text = rest[1:]
        if ipaddress.ip_address(host).version != 6:
            raise ValueError(text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        ipaddress.IPv6Address(text)  # a bare IPv6 literal has no port
    try:
        port = _parse_port(port_text) if port_text else default_port
        if port is None:
            raise ValueError(text)
        return Address(_resolve_host(host), port)
    except OSError as exc:
        raise ValueError(text) from exc


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
