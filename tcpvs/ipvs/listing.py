"""ipvsadm's listings, byte for byte: -L/-l in every format, -S, --timeout, --daemon, -c.

Pure functions from model objects to text (name resolution, unless numeric, goes through
tcpvs/ipvs/names.py). Sorting reproduces libipvs's comparators, whose address difference
wraps around in 32 bits, under glibc's merge sort, so even the odd orders come out the same.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

from tcpvs.ipvs import uapi
from tcpvs.ipvs.model import (
    FWD_NAMES,
    PROTOCOL_NAMES,
    TUN_TYPES,
    Connection,
    Daemon,
    Dest,
    Info,
    Service,
    ServiceState,
    Stats,
    Timeouts,
    addr_bytes,
)
from tcpvs.ipvs.names import addrport_to_anyname
from tcpvs.ipvs.options import (
    FMT_EXACT,
    FMT_NOSORT,
    FMT_NUMERIC,
    FMT_PERSISTENTCONN,
    FMT_RATE,
    FMT_RULE,
    FMT_STATS,
    FMT_THRESHOLDS,
    FMT_TUN_INFO,
)

T = TypeVar("T")
_RULE_SWITCH = {
    uapi.IP_VS_CONN_F_MASQ: "-m",
    uapi.IP_VS_CONN_F_TUNNEL: "-i",
    uapi.IP_VS_CONN_F_LOCALNODE: "-g",
    uapi.IP_VS_CONN_F_DROUTE: "-g",
}
_RULE_PROTO = {uapi.IPPROTO_TCP: "-t", uapi.IPPROTO_UDP: "-u", uapi.IPPROTO_SCTP: "--sctp-service"}
TUN_FLAG_NAMES = ("-c", "+c", "r+c")
TUN_FLAG_OPTS = ("--tun-nocsum", "--tun-csum", "--tun-remcsum")


# ---- sorting --------------------------------------------------------------------------------


def _int32(value: int) -> int:
    """A C unsigned/int difference converted to int."""
    return (value + 2**31) % 2**32 - 2**31


def _cmp_addr(af: int, a: bytes, b: bytes) -> int:
    words = 4 if af == uapi.AF_INET6 else 1
    for i in range(0, 4 * words, 4):
        r = _int32(int.from_bytes(a[i : i + 4], "big") - int.from_bytes(b[i : i + 4], "big"))
        if r:
            return r
    return 0


def cmp_services(a: Service, b: Service) -> int:
    """libipvs ipvs_cmp_services: fwmark, af, protocol, address, port."""
    r = _int32(a.fwmark - b.fwmark) or a.af - b.af or a.protocol - b.protocol
    if r:
        return r
    if not a.fwmark:
        r = _cmp_addr(a.af, addr_bytes(a.addr, a.af), addr_bytes(b.addr, b.af))
    return r or a.port - b.port


def cmp_dests(a: Dest, b: Dest) -> int:
    """libipvs ipvs_cmp_dests: address (in the first dest's family), then port."""
    return _cmp_addr(a.af, addr_bytes(a.addr, a.af), addr_bytes(b.addr, b.af)) or a.port - b.port


def msort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """glibc qsort (msort_with_tmp): top-down merge sort, left wins while cmp <= 0."""
    if len(items) <= 1:
        return list(items)
    n1 = len(items) // 2
    left, right = msort(items[:n1], cmp), msort(items[n1:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


def sort_states(states: Sequence[ServiceState], fmt: int) -> list[ServiceState]:
    if fmt & FMT_NOSORT:
        return list(states)
    return [
        ServiceState(s.service, tuple(msort(s.dests, cmp_dests)))
        for s in msort(states, lambda x, y: cmp_services(x.service, y.service))
    ]


# ---- pieces ---------------------------------------------------------------------------------


def largenum(value: int, fmt: int) -> str:
    """print_largenum: 9 columns, K/M/G/T above 10^8 unless --exact."""
    if fmt & FMT_EXACT:
        digits = len(str(value))
        return f"{value:>{9 if digits <= 8 else digits + 1}}"
    for limit, div, unit in (
        (10**8, 1, ""),
        (10**9, 10**3, "K"),
        (10**11, 10**6, "M"),
        (10**14, 10**9, "G"),
    ):
        if value < limit:
            return f"{value:>9}" if not unit else f"{value // div:>8}{unit}"
    return f"{value // 10**12:>8}T"


def _signed(value: int) -> int:
    """Debian's ipvsadm 1.31 prints fwmarks with %d."""
    return value - 2**32 if value >= 2**31 else value


def sched_flags_text(svc: Service) -> str:
    names: tuple[str, ...]
    if svc.scheduler in ("sh", "mh"):
        names = (f"{svc.scheduler}-fallback", f"{svc.scheduler}-port")
    else:
        names = ("flag-1", "flag-2", "flag-3")
    bits = (uapi.IP_VS_SVC_F_SCHED1, uapi.IP_VS_SVC_F_SCHED2, uapi.IP_VS_SVC_F_SCHED3)
    return ",".join(n for n, bit in zip(names, bits, strict=False) if svc.flags & bit)


def mask_text(svc: Service) -> str | None:
    """The persistence mask when it is not the full one (/32 dotted, or an IPv6 prefix)."""
    if svc.af == uapi.AF_INET and svc.netmask != 0xFFFFFFFF:
        return socket.inet_ntoa((svc.netmask or 0).to_bytes(4, "big"))
    if svc.af == uapi.AF_INET6 and svc.netmask != 128:
        return str(_int32(svc.netmask or 0))
    return None


def svc_name(svc: Service, fmt: int) -> str:
    if svc.fwmark:
        mark = _signed(svc.fwmark)
        v6 = svc.af == uapi.AF_INET6
        if fmt & FMT_RULE:
            return f"-f {mark} -6" if v6 else f"-f {mark}"
        return f"FWM  {mark} IPv6" if v6 else f"FWM  {mark}"
    vname = addrport_to_anyname(svc.af, svc.addr, svc.port, svc.protocol, bool(fmt & FMT_NUMERIC))
    if fmt & FMT_RULE:
        return f"{_RULE_PROTO.get(svc.protocol, '--xxx-service')} {vname}"
    name = f"{PROTOCOL_NAMES.get(svc.protocol, '?'):<4} {vname}"
    return name if svc.af == uapi.AF_INET6 else name[:33]


def tun_info(dest: Dest) -> str | None:
    """fwd_tun_info: ipip, gue:<port>:<flags> or gre:<flags>, only for tunnel dests."""
    if dest.fwd != uapi.IP_VS_CONN_F_TUNNEL or dest.tun_type >= len(TUN_TYPES):
        return None
    flag = TUN_FLAG_NAMES[dest.tun_flags] if dest.tun_flags < 3 else "(null)"
    kind = TUN_TYPES[dest.tun_type]
    if dest.tun_type == uapi.IP_VS_CONN_F_TUNNEL_TYPE_IPIP:
        return kind
    if dest.tun_type == uapi.IP_VS_CONN_F_TUNNEL_TYPE_GUE:
        return f"{kind}:{dest.tun_port}:{flag}"[:15]
    return f"{kind}:{flag}"[:15]


def dest_stats(dest: Dest) -> Stats:
    """ipvsadm reads a dest's 64-bit stats with its 32-bit getter: all but bytes wrap at 2^32."""
    s, m = dest.stats, 0xFFFFFFFF
    return Stats(
        s.conns & m,
        s.inpkts & m,
        s.outpkts & m,
        s.inbytes,
        s.outbytes,
        s.cps & m,
        s.inpps & m,
        s.outpps & m,
        s.inbps & m,
        s.outbps & m,
    )


def title(fmt: int) -> str:
    head = "Prot LocalAddress:Port"
    if fmt & (FMT_STATS | FMT_RATE):
        cols = (
            ("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
            if fmt & FMT_STATS
            else ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
        )
        return f"{head:<33} " + " ".join(f"{c:>8}" for c in cols) + "\n  -> RemoteAddress:Port\n"
    if fmt & FMT_THRESHOLDS:
        return (
            f"{head:<33} {'Uthreshold':<10} {'Lthreshold':<10} {'ActiveConn':<10} "
            f"{'InActConn':<10}\n  -> RemoteAddress:Port\n"
        )
    if fmt & FMT_PERSISTENTCONN:
        return (
            f"{head:<33} {'Weight':<9} {'PersistConn':<11} {'ActiveConn':<10} "
            f"{'InActConn':<10}\n  -> RemoteAddress:Port\n"
        )
    if fmt & FMT_TUN_INFO:
        return (
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn "
            "InActConn\n"
        )
    if fmt & FMT_RULE:
        return ""
    return (
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    )


def _stats_cols(st: Stats, fmt: int, rate: bool) -> str:
    vals = (
        (st.cps, st.inpps, st.outpps, st.inbps, st.outbps)
        if rate
        else (st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes)
    )
    return "".join(largenum(v, fmt) for v in vals)


def service_rule(svc: Service, name: str, command: str = "-A") -> str:
    """The -S line of a service (`-A <name> -s <sched> ...`)."""
    line = f"{command} {name} -s {svc.scheduler}"
    if svc.persistent:
        line += f" -p {svc.timeout}"
        mask = mask_text(svc)
        line += f" -M {mask}" if mask is not None else ""
    line += f" --pe {svc.pe_name}" if svc.pe_name else ""
    line += " -o" if svc.one_packet else ""
    return line + (f" -b {sched_flags_text(svc)}" if svc.flags & uapi.SCHED_FLAGS else "")


def _service_line(svc: Service, name: str, fmt: int) -> str:
    if fmt & FMT_RULE:
        return service_rule(svc, name)
    if fmt & (FMT_STATS | FMT_RATE):
        return f"{name:<33}" + _stats_cols(svc.stats, fmt, not fmt & FMT_STATS)
    line = f"{name} {svc.scheduler}"
    if svc.flags & uapi.SCHED_FLAGS:
        line += f" ({sched_flags_text(svc)})"
    if svc.persistent:
        line += f" persistent {svc.timeout}"
        mask = mask_text(svc)
        line += f" mask {mask}" if mask is not None else ""
        line += f" pe {svc.pe_name}" if svc.pe_name else ""
    return line + (" ops" if svc.one_packet else "")


def dest_rule(name: str, dname: str, d: Dest, command: str = "-a") -> str:
    """The -S line of a real server (`-a <svc> -r <dest> <fwd> -w <weight> [tunnel]`)."""
    line = f"{command} {name} -r {dname} {_RULE_SWITCH.get(d.fwd, '(null)')} -w {d.weight}"
    if d.fwd != uapi.IP_VS_CONN_F_TUNNEL or d.tun_type >= len(TUN_TYPES):
        return line
    line += f" --tun-type {TUN_TYPES[d.tun_type]}"
    flag = TUN_FLAG_OPTS[d.tun_flags] if d.tun_flags < 3 else "(null)"
    if d.tun_type == uapi.IP_VS_CONN_F_TUNNEL_TYPE_GUE:
        return line + f" --tun-port {d.tun_port} {flag}"
    if d.tun_type == uapi.IP_VS_CONN_F_TUNNEL_TYPE_GRE:
        return line + f" {flag}"
    return line


def _dest_line(svc: Service, name: str, d: Dest, fmt: int) -> str:
    dname = addrport_to_anyname(d.af, d.addr, d.port, svc.protocol, bool(fmt & FMT_NUMERIC))
    if fmt & FMT_RULE:
        return dest_rule(name, dname, d)
    if d.af != uapi.AF_INET6:
        dname = dname[:28]
    fwd = FWD_NAMES.get(d.fwd, "(null)")
    if fmt & FMT_STATS:
        return f"  -> {dname:<28}" + _stats_cols(dest_stats(d), fmt, False)
    if fmt & FMT_RATE:
        st = dest_stats(d)
        return (
            f"  -> {dname:<28} {st.cps:>8} {st.inpps:>8} {st.outpps:>8}"
            + largenum(st.inbps, fmt)
            + largenum(st.outbps, fmt)
        )
    if fmt & FMT_THRESHOLDS:
        return (
            f"  -> {dname:<28} {d.u_threshold:<10} {d.l_threshold:<10} "
            f"{d.active_conns:<10} {d.inact_conns:<10}"
        )
    if fmt & FMT_PERSISTENTCONN:
        return (
            f"  -> {dname:<28} {d.weight:<9} {d.persist_conns:<11} "
            f"{d.active_conns:<10} {d.inact_conns:<10}"
        )
    if fmt & FMT_TUN_INFO:
        return (
            f"  -> {dname:<28} {fwd:<7} {tun_info(d) or 'n/a':<13} {d.weight:<6} "
            f"{d.active_conns:<10} {d.inact_conns:<10}"
        )
    return f"  -> {dname:<28} {fwd:<7} {d.weight:<6} {d.active_conns:<10} {d.inact_conns:<10}"


def service_entry(state: ServiceState, fmt: int) -> str:
    """print_service_entry: the service line and its (already sorted) dests."""
    svc = state.service
    name = svc_name(svc, fmt)
    lines = [_service_line(svc, name, fmt)]
    lines += [_dest_line(svc, name, d, fmt) for d in state.dests]
    return "".join(line + "\n" for line in lines)


def list_all(info: Info | None, states: Sequence[ServiceState], fmt: int) -> str:
    """`ipvsadm -L` (info given) / `-S` (fmt has FMT_RULE): header, title, services."""
    head = ""
    if not fmt & FMT_RULE and info is not None:
        head = f"IP Virtual Server version {info.version_text} (size={info.conn_tab_size})\n"
    body = "".join(service_entry(s, fmt) for s in sort_states(states, fmt))
    return head + title(fmt) + body


def list_service(state: ServiceState, fmt: int) -> str:
    """`ipvsadm -L <service>`: title and the one service, no version line."""
    return title(fmt) + service_entry(sort_states([state], fmt)[0], fmt)


def timeouts_text(t: Timeouts) -> str:
    return f"Timeout (tcp tcpfin udp): {t.tcp} {t.tcp_fin} {t.udp}\n"


def daemons_text(daemons: Sequence[Daemon]) -> str:
    out = []
    for d in daemons[:2]:
        if d.role == "none":
            continue
        line = f"{d.role} sync daemon (mcast={d.mcast_ifn}, syncid={d.syncid}"
        line += f", maxlen={d.sync_maxlen}" if d.sync_maxlen else ""
        line += f", group={d.mcast_group}" if d.mcast_group else ""
        line += f", port={d.mcast_port}" if d.mcast_port else ""
        line += f", ttl={d.mcast_ttl}" if d.mcast_ttl else ""
        out.append(line + ")\n")
    return "".join(out)


_CONN_PROTOS = {name: num for num, name in PROTOCOL_NAMES.items()}


def connections_text(conns: Sequence[Connection], fmt: int) -> str:
    """`ipvsadm -c`: the title lines and one line per connection entry."""
    numeric = bool(fmt & FMT_NUMERIC)
    pc = bool(fmt & FMT_PERSISTENTCONN)
    out = ["IPVS connection entries\n"]
    if pc:
        out.append(
            f"pro expire {'state':<11} {'source':<18} {'virtual':<18} "
            f"{'destination':<18} {'pe name':<16} pe_data\n"
        )
    else:
        out.append(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination\n")
    for c in conns:
        proto = _CONN_PROTOS.get(c.protocol, 0)
        cname = addrport_to_anyname(c.af, c.client, c.cport, proto, numeric)
        vname = addrport_to_anyname(c.af, c.vaddr, c.vport, proto, numeric)
        dname = addrport_to_anyname(c.daf, c.daddr, c.dport, proto, numeric)
        expire = f"{c.expires // 60:02d}:{c.expires % 60:02d}"
        if pc and c.pe_data:
            out.append(
                f"{c.protocol:<3} {expire:<6} {c.state:<11} {cname:<18} {vname:<18} "
                f"{dname:<16} {c.pe_name:<18} {c.pe_data}\n"
            )
        else:
            out.append(
                f"{c.protocol:<3} {expire:<6} {c.state:<11} {cname:<18} {vname:<18} {dname}\n"
            )
    return "".join(out)
