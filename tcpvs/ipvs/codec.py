"""Sans-IO IPVS codec: model objects to generic-netlink attributes and back.

Encodings follow ipvsadm 1.31's libipvs byte for byte: ports (and the tunnel port) in network
order, addresses as 16-byte `nf_inet_addr`, flags as {flags, mask=~0}, the IPv4 netmask as its
network-order bytes and the IPv6 one as a native u32 prefix length.
"""

from __future__ import annotations

import socket
import struct

from tcpvs.ipvs import uapi
from tcpvs.ipvs.model import (
    Daemon,
    Dest,
    Info,
    Service,
    Stats,
    Timeouts,
    addr_bytes,
)
from tcpvs.ipvs.netlink import (
    get_be16,
    get_string,
    get_u8,
    get_u16,
    get_u32,
    get_uint,
    nla,
    nla_be16,
    nla_nested,
    nla_string,
    nla_u8,
    nla_u16,
    nla_u32,
    parse_attrs,
)

_STATS_FIELDS = (
    "conns",
    "inpkts",
    "outpkts",
    "inbytes",
    "outbytes",
    "cps",
    "inpps",
    "outpps",
    "inbps",
    "outbps",
)


def _netmask_wire(svc: Service) -> bytes:
    if svc.af == uapi.AF_INET6:
        return struct.pack("=I", svc.netmask or 0)
    return struct.pack("!I", (svc.netmask or 0) & 0xFFFFFFFF)


def service_key_attrs(svc: Service) -> bytes:
    """AF plus FWMARK, or PROTOCOL + ADDR + PORT: what identifies a service."""
    parts = [nla_u16(uapi.IPVS_SVC_ATTR_AF, svc.af)]
    if svc.fwmark:
        parts.append(nla_u32(uapi.IPVS_SVC_ATTR_FWMARK, svc.fwmark))
    else:
        parts.append(nla_u16(uapi.IPVS_SVC_ATTR_PROTOCOL, svc.protocol))
        addr = addr_bytes(svc.addr, svc.af) if svc.addr else bytes(16)
        parts.append(nla(uapi.IPVS_SVC_ATTR_ADDR, addr))
        parts.append(nla_be16(uapi.IPVS_SVC_ATTR_PORT, svc.port))
    return b"".join(parts)


def service_attr(svc: Service, *, key_only: bool = False) -> bytes:
    """IPVS_CMD_ATTR_SERVICE, complete as ipvsadm sends it for every service command."""
    body = service_key_attrs(svc)
    if not key_only:
        body += nla_string(uapi.IPVS_SVC_ATTR_SCHED_NAME, svc.scheduler)
        if svc.pe_name:
            body += nla_string(uapi.IPVS_SVC_ATTR_PE_NAME, svc.pe_name)
        body += nla(uapi.IPVS_SVC_ATTR_FLAGS, struct.pack("=II", svc.flags, 0xFFFFFFFF))
        body += nla_u32(uapi.IPVS_SVC_ATTR_TIMEOUT, svc.timeout)
        body += nla(uapi.IPVS_SVC_ATTR_NETMASK, _netmask_wire(svc))
    return nla_nested(uapi.IPVS_CMD_ATTR_SERVICE, body)


def dest_attr(dest: Dest) -> bytes:
    return nla_nested(
        uapi.IPVS_CMD_ATTR_DEST,
        nla_u16(uapi.IPVS_DEST_ATTR_ADDR_FAMILY, dest.af),
        nla(uapi.IPVS_DEST_ATTR_ADDR, addr_bytes(dest.addr, dest.af)),
        nla_be16(uapi.IPVS_DEST_ATTR_PORT, dest.port),
        nla_u32(uapi.IPVS_DEST_ATTR_FWD_METHOD, dest.fwd & uapi.IP_VS_CONN_F_FWD_MASK),
        nla_u32(uapi.IPVS_DEST_ATTR_WEIGHT, dest.weight),
        nla_u8(uapi.IPVS_DEST_ATTR_TUN_TYPE, dest.tun_type),
        nla_be16(uapi.IPVS_DEST_ATTR_TUN_PORT, dest.tun_port),
        nla_u16(uapi.IPVS_DEST_ATTR_TUN_FLAGS, dest.tun_flags),
        nla_u32(uapi.IPVS_DEST_ATTR_U_THRESH, dest.u_threshold),
        nla_u32(uapi.IPVS_DEST_ATTR_L_THRESH, dest.l_threshold),
    )


def daemon_attr(daemon: Daemon, *, stop: bool = False) -> bytes:
    parts = [
        nla_u32(uapi.IPVS_DAEMON_ATTR_STATE, daemon.state),
        nla_string(uapi.IPVS_DAEMON_ATTR_MCAST_IFN, daemon.mcast_ifn),
        nla_u32(uapi.IPVS_DAEMON_ATTR_SYNC_ID, daemon.syncid),
    ]
    if not stop:
        if daemon.sync_maxlen:
            parts.append(nla_u16(uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN, daemon.sync_maxlen))
        if daemon.mcast_port:
            parts.append(nla_u16(uapi.IPVS_DAEMON_ATTR_MCAST_PORT, daemon.mcast_port))
        if daemon.mcast_ttl:
            parts.append(nla_u8(uapi.IPVS_DAEMON_ATTR_MCAST_TTL, daemon.mcast_ttl))
        if daemon.mcast_group:
            if ":" in daemon.mcast_group:
                parts.append(
                    nla(
                        uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6,
                        socket.inet_pton(uapi.AF_INET6, daemon.mcast_group),
                    )
                )
            else:
                parts.append(
                    nla(
                        uapi.IPVS_DAEMON_ATTR_MCAST_GROUP,
                        socket.inet_pton(uapi.AF_INET, daemon.mcast_group),
                    )
                )
    return nla_nested(uapi.IPVS_CMD_ATTR_DAEMON, *parts)


def timeout_attrs(t: Timeouts) -> bytes:
    return (
        nla_u32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp)
        + nla_u32(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin)
        + nla_u32(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp)
    )


# ---- replies -------------------------------------------------------------------------------


def decode_stats(attrs: dict[int, bytes], key64: int, key32: int) -> Stats:
    """Prefer the 64-bit set; the 32-bit one mixes u32 counters with u64 byte counts."""
    raw = attrs.get(key64) or attrs.get(key32)
    if raw is None:
        return Stats()
    st = parse_attrs(raw)
    return Stats(
        **{name: get_uint(st[i + 1]) if i + 1 in st else 0 for i, name in enumerate(_STATS_FIELDS)}
    )


def _addr_text(raw: bytes, af: int) -> str:
    size = 16 if af == uapi.AF_INET6 else 4
    return socket.inet_ntop(af, raw[:size].ljust(size, b"\0"))


def decode_service(msg_attrs: dict[int, bytes]) -> Service:
    a = parse_attrs(msg_attrs[uapi.IPVS_CMD_ATTR_SERVICE])
    af = get_u16(a[uapi.IPVS_SVC_ATTR_AF])
    fwmark = get_u32(a[uapi.IPVS_SVC_ATTR_FWMARK]) if uapi.IPVS_SVC_ATTR_FWMARK in a else 0
    flags_raw = a.get(uapi.IPVS_SVC_ATTR_FLAGS, bytes(8))
    flags, mask = struct.unpack_from("=II", flags_raw)
    netmask_raw = a.get(uapi.IPVS_SVC_ATTR_NETMASK, bytes(4))
    netmask = (
        get_u32(netmask_raw) if af == uapi.AF_INET6 else struct.unpack_from("!I", netmask_raw)[0]
    )
    return Service(
        af=af,
        fwmark=fwmark,
        protocol=0 if fwmark else get_u16(a[uapi.IPVS_SVC_ATTR_PROTOCOL]),
        addr="" if fwmark else _addr_text(a[uapi.IPVS_SVC_ATTR_ADDR], af),
        port=0 if fwmark else get_be16(a[uapi.IPVS_SVC_ATTR_PORT]),
        scheduler=get_string(a.get(uapi.IPVS_SVC_ATTR_SCHED_NAME, b"")),
        pe_name=get_string(a.get(uapi.IPVS_SVC_ATTR_PE_NAME, b"")),
        flags=flags & mask & ~uapi.IP_VS_SVC_F_HASHED,  # HASHED is the kernel's own
        timeout=get_u32(a.get(uapi.IPVS_SVC_ATTR_TIMEOUT, bytes(4))),
        netmask=netmask,
        stats=decode_stats(a, uapi.IPVS_SVC_ATTR_STATS64, uapi.IPVS_SVC_ATTR_STATS),
    )


def decode_dest(msg_attrs: dict[int, bytes], svc_af: int) -> Dest:
    a = parse_attrs(msg_attrs[uapi.IPVS_CMD_ATTR_DEST])
    af = (
        get_u16(a[uapi.IPVS_DEST_ATTR_ADDR_FAMILY])
        if uapi.IPVS_DEST_ATTR_ADDR_FAMILY in a
        else svc_af
    )

    def u32(key: int) -> int:
        return get_u32(a[key]) if key in a else 0

    return Dest(
        addr=_addr_text(a[uapi.IPVS_DEST_ATTR_ADDR], af),
        port=get_be16(a[uapi.IPVS_DEST_ATTR_PORT]),
        af=af,
        fwd=u32(uapi.IPVS_DEST_ATTR_FWD_METHOD) & uapi.IP_VS_CONN_F_FWD_MASK,
        weight=struct.unpack("=i", a[uapi.IPVS_DEST_ATTR_WEIGHT][:4])[0],
        u_threshold=u32(uapi.IPVS_DEST_ATTR_U_THRESH),
        l_threshold=u32(uapi.IPVS_DEST_ATTR_L_THRESH),
        tun_type=get_u8(a[uapi.IPVS_DEST_ATTR_TUN_TYPE])
        if uapi.IPVS_DEST_ATTR_TUN_TYPE in a
        else 0,
        tun_port=get_be16(a[uapi.IPVS_DEST_ATTR_TUN_PORT])
        if uapi.IPVS_DEST_ATTR_TUN_PORT in a
        else 0,
        tun_flags=get_u16(a[uapi.IPVS_DEST_ATTR_TUN_FLAGS])
        if uapi.IPVS_DEST_ATTR_TUN_FLAGS in a
        else 0,
        active_conns=u32(uapi.IPVS_DEST_ATTR_ACTIVE_CONNS),
        inact_conns=u32(uapi.IPVS_DEST_ATTR_INACT_CONNS),
        persist_conns=u32(uapi.IPVS_DEST_ATTR_PERSIST_CONNS),
        stats=decode_stats(a, uapi.IPVS_DEST_ATTR_STATS64, uapi.IPVS_DEST_ATTR_STATS),
    )


def decode_info(msg_attrs: dict[int, bytes]) -> Info:
    return Info(
        version=get_u32(msg_attrs[uapi.IPVS_INFO_ATTR_VERSION]),
        conn_tab_size=get_u32(msg_attrs[uapi.IPVS_INFO_ATTR_CONN_TAB_SIZE]),
    )


def decode_timeouts(msg_attrs: dict[int, bytes]) -> Timeouts:
    def get(key: int) -> int:
        return get_u32(msg_attrs[key]) if key in msg_attrs else 0

    return Timeouts(
        tcp=get(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP),
        tcp_fin=get(uapi.IPVS_CMD_ATTR_TIMEOUT_TCP_FIN),
        udp=get(uapi.IPVS_CMD_ATTR_TIMEOUT_UDP),
    )


def decode_daemon(msg_attrs: dict[int, bytes]) -> Daemon:
    a = parse_attrs(msg_attrs[uapi.IPVS_CMD_ATTR_DAEMON])
    group = ""
    if uapi.IPVS_DAEMON_ATTR_MCAST_GROUP in a:
        group = socket.inet_ntop(uapi.AF_INET, a[uapi.IPVS_DAEMON_ATTR_MCAST_GROUP][:4])
    elif uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6 in a:
        group = socket.inet_ntop(uapi.AF_INET6, a[uapi.IPVS_DAEMON_ATTR_MCAST_GROUP6][:16])
    return Daemon(
        state=get_u32(a[uapi.IPVS_DAEMON_ATTR_STATE]),
        mcast_ifn=get_string(a.get(uapi.IPVS_DAEMON_ATTR_MCAST_IFN, b"")),
        syncid=get_u32(a.get(uapi.IPVS_DAEMON_ATTR_SYNC_ID, bytes(4))),
        sync_maxlen=get_u16(a[uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN])
        if uapi.IPVS_DAEMON_ATTR_SYNC_MAXLEN in a
        else 0,
        mcast_group=group,
        mcast_port=get_u16(a[uapi.IPVS_DAEMON_ATTR_MCAST_PORT])
        if uapi.IPVS_DAEMON_ATTR_MCAST_PORT in a
        else 0,
        mcast_ttl=get_u8(a[uapi.IPVS_DAEMON_ATTR_MCAST_TTL])
        if uapi.IPVS_DAEMON_ATTR_MCAST_TTL in a
        else 0,
    )
