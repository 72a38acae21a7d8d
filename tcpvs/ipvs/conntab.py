"""The IPVS connection table: /proc/net/ip_vs_conn rows to Connection objects.

Rows are parsed as ipvsadm's print_conn does: whitespace-separated fields, addresses as IPv6
text, IPv4 text or 8 hex digits (host order), ports in hex.
"""

from __future__ import annotations

import re
import socket

from tcpvs.ipvs import uapi
from tcpvs.ipvs.model import Connection

CONN_PROC_FILE = "/proc/net/ip_vs_conn"
_HEX = re.compile(r"\s*(?:0[xX])?([0-9a-fA-F]*)")


def _hex(text: str) -> int:
    """strtoul(text, NULL, 16): the leading hex digits, 0 if none."""
    digits = _HEX.match(text).group(1)  # type: ignore[union-attr]
    return int(digits, 16) if digits else 0


def _text(af: int, text: str) -> str | None:
    try:
        return socket.inet_ntop(af, socket.inet_pton(af, text))
    except OSError:
        return None


def _v4(text: str) -> str:
    return socket.inet_ntop(uapi.AF_INET, (_hex(text) & 0xFFFFFFFF).to_bytes(4, "big"))


def parse_line(line: str) -> Connection | None:
    """One proc row (None for a blank line); pe_name/pe_data are "" when the row has none."""
    f = line.split()
    if not f:
        return None
    f += [""] * (11 - len(f))
    proto, c, cport, v, vport, d, dport, state, expires, pe_name, pe_data = f[:11]
    for af in (uapi.AF_INET6, uapi.AF_INET):
        client = _text(af, c)
        if client is not None:
            vaddr = _text(af, v) or ("::" if af == uapi.AF_INET6 else "0.0.0.0")
            break
    else:
        af, client, vaddr = uapi.AF_INET, _v4(c), _v4(v)
    daf, daddr = uapi.AF_INET6, _text(uapi.AF_INET6, d)
    if daddr is None:
        daf, daddr = uapi.AF_INET, _text(uapi.AF_INET, d) or _v4(d)
    return Connection(
        protocol=proto,
        af=af,
        client=client,
        cport=_hex(cport) & 0xFFFF,
        vaddr=vaddr,
        vport=_hex(vport) & 0xFFFF,
        daf=daf,
        daddr=daddr,
        dport=_hex(dport) & 0xFFFF,
        state=state,
        expires=int(expires) if expires.lstrip("-").isdigit() else 0,
        pe_name=pe_name,
        pe_data=pe_data,
    )


def read(path: str = CONN_PROC_FILE) -> list[Connection]:
    """All rows after the header line (OSError when the file cannot be read)."""
    with open(path) as fh:
        lines = fh.read().splitlines()[1:]
    return [c for c in map(parse_line, lines) if c is not None]
