"""Typed IPVS objects: services, real servers (dests), stats, timeouts, sync daemons, info.

Values are what the kernel stores (flags as ints, ports in host order, addresses as text);
constructors normalise addresses and derive the address family from them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from typing import Any

from tcpvs.ipvs import uapi

PROTOCOL_NAMES = {uapi.IPPROTO_TCP: "TCP", uapi.IPPROTO_UDP: "UDP", uapi.IPPROTO_SCTP: "SCTP"}
FWD_NAMES = {
    uapi.IP_VS_CONN_F_MASQ: "Masq",
    uapi.IP_VS_CONN_F_LOCALNODE: "Local",
    uapi.IP_VS_CONN_F_TUNNEL: "Tunnel",
    uapi.IP_VS_CONN_F_DROUTE: "Route",
}
TUN_TYPES = ("ipip", "gue", "gre")
ALL_ONES = 0xFFFFFFFF


def family_of(addr: str) -> int:
    return uapi.AF_INET6 if ":" in addr else uapi.AF_INET


def normalize_addr(addr: str, af: int | None = None) -> str:
    """Canonical text of an IP literal (raises ValueError when it is not one)."""
    af = af or family_of(addr)
    try:
        return socket.inet_ntop(af, socket.inet_pton(af, addr))
    except OSError as exc:
        raise ValueError(f"not an IP address: {addr!r}") from exc


def addr_bytes(addr: str, af: int) -> bytes:
    """The 16-byte `union nf_inet_addr` (IPv4 in the first 4 bytes)."""
    return socket.inet_pton(af, addr).ljust(16, b"\0")


@dataclass(frozen=True)
class Stats:
    """Counters (conns, packets, bytes) and the 2-second estimator's rates."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


@dataclass(frozen=True)
class Service:
    """A virtual service: protocol+address+port, or a firewall mark (fwmark > 0).

    netmask is the persistence granularity: for IPv4 a 32-bit mask in host order
    (0xFFFFFF00 is 255.255.255.0), for IPv6 a prefix length. None picks /32 or /128.
    """

    addr: str = ""
    port: int = 0
    protocol: int = uapi.IPPROTO_TCP
    fwmark: int = 0
    af: int = 0
    scheduler: str = "wlc"
    flags: int = 0
    timeout: int = 0
    netmask: int | None = None
    pe_name: str = ""
    stats: Stats = field(default_factory=Stats, compare=False)

    def __post_init__(self) -> None:
        af = self.af or (family_of(self.addr) if self.addr and not self.fwmark else uapi.AF_INET)
        object.__setattr__(self, "af", af)
        if self.addr and not self.fwmark:
            object.__setattr__(self, "addr", normalize_addr(self.addr, af))
        if self.fwmark:  # the kernel keys these by mark alone
            object.__setattr__(self, "addr", "")
            object.__setattr__(self, "port", 0)
            object.__setattr__(self, "protocol", 0)
        if self.netmask is None:
            object.__setattr__(self, "netmask", 128 if af == uapi.AF_INET6 else ALL_ONES)

    @classmethod
    def tcp(cls, addr: str, port: int, **kw: Any) -> Service:
        return cls(addr=addr, port=port, protocol=uapi.IPPROTO_TCP, **kw)

    @classmethod
    def udp(cls, addr: str, port: int, **kw: Any) -> Service:
        return cls(addr=addr, port=port, protocol=uapi.IPPROTO_UDP, **kw)

    @classmethod
    def sctp(cls, addr: str, port: int, **kw: Any) -> Service:
        return cls(addr=addr, port=port, protocol=uapi.IPPROTO_SCTP, **kw)

    @classmethod
    def fw(cls, fwmark: int, af: int = uapi.AF_INET, **kw: Any) -> Service:
        return cls(fwmark=fwmark, af=af, **kw)

    @property
    def key(self) -> tuple[int, int, str, int, int]:
        """What identifies the service in the kernel."""
        if self.fwmark:
            return (self.af, 0, "", 0, self.fwmark)
        return (self.af, self.protocol, self.addr, self.port, 0)

    @property
    def persistent(self) -> bool:
        return bool(self.flags & uapi.IP_VS_SVC_F_PERSISTENT)

    @property
    def one_packet(self) -> bool:
        return bool(self.flags & uapi.IP_VS_SVC_F_ONEPACKET)

    def settings(self) -> tuple[Any, ...]:
        """What -E can change (HASHED is kernel-managed and ignored)."""
        return (
            self.scheduler,
            self.flags & ~uapi.IP_VS_SVC_F_HASHED,
            self.timeout,
            self.netmask,
            self.pe_name,
        )

    def with_(self, **changes: Any) -> Service:
        return replace(self, **changes)


@dataclass(frozen=True)
class Dest:
    """A real server of a service, with its live counters (not part of equality)."""

    addr: str
    port: int = 0
    af: int = 0
    fwd: int = uapi.IP_VS_CONN_F_DROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = uapi.IP_VS_CONN_F_TUNNEL_TYPE_IPIP
    tun_port: int = 0
    tun_flags: int = 0
    active_conns: int = field(default=0, compare=False)
    inact_conns: int = field(default=0, compare=False)
    persist_conns: int = field(default=0, compare=False)
    stats: Stats = field(default_factory=Stats, compare=False)

    def __post_init__(self) -> None:
        af = self.af or family_of(self.addr)
        object.__setattr__(self, "af", af)
        object.__setattr__(self, "addr", normalize_addr(self.addr, af))

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.af, self.addr, self.port)

    def settings(self) -> tuple[Any, ...]:
        """What -e can change; tunnel details only matter for tunnel dests."""
        tun = (self.tun_type, self.tun_port, self.tun_flags)
        return (
            self.fwd,
            self.weight,
            self.u_threshold,
            self.l_threshold,
            tun if self.fwd == uapi.IP_VS_CONN_F_TUNNEL else None,
        )

    def with_(self, **changes: Any) -> Dest:
        return replace(self, **changes)


@dataclass(frozen=True)
class Timeouts:
    """Connection timeouts in seconds; 0 in a set request keeps the current value."""

    tcp: int = 0
    tcp_fin: int = 0
    udp: int = 0


@dataclass(frozen=True)
class Daemon:
    """A connection synchronisation daemon (state MASTER or BACKUP)."""

    state: int
    mcast_ifn: str = "eth0"
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: str = ""
    mcast_port: int = 0
    mcast_ttl: int = 0

    @property
    def role(self) -> str:
        if self.state & uapi.IP_VS_STATE_MASTER:
            return "master"
        return "backup" if self.state & uapi.IP_VS_STATE_BACKUP else "none"


@dataclass(frozen=True)
class Info:
    version: int
    conn_tab_size: int

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"


@dataclass(frozen=True)
class ServiceState:
    """A service with its real servers, as listed."""

    service: Service
    dests: tuple[Dest, ...] = ()


@dataclass(frozen=True)
class Connection:
    """One row of /proc/net/ip_vs_conn{,_v6}."""

    protocol: str
    af: int
    client: str
    cport: int
    vaddr: str
    vport: int
    daf: int
    daddr: str
    dport: int
    state: str
    expires: int
    pe_name: str = ""
    pe_data: str = ""
