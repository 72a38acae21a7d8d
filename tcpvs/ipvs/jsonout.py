"""--json: every listing as a JSON document (numeric addresses, all counters, same order).

The shapes: {"version", "conn_tab_size", "services": [{..., "dests": [...]}]} for -L and -S,
{"tcp", "tcpfin", "udp"} for --timeout, {"daemons": [...]} for --daemon and
{"connections": [...]} for -c.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tcpvs.ipvs import uapi
from tcpvs.ipvs.listing import mask_text, sched_flags_text, sort_states, tun_info
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
    Timeouts,
)


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2) + "\n"


def _af(af: int) -> str:
    return "inet6" if af == uapi.AF_INET6 else "inet"


def service_doc(svc: Service) -> dict[str, Any]:
    doc: dict[str, Any] = {"af": _af(svc.af)}
    if svc.fwmark:
        doc["fwmark"] = svc.fwmark
    else:
        doc.update(
            protocol=PROTOCOL_NAMES.get(svc.protocol, str(svc.protocol)),
            address=svc.addr,
            port=svc.port,
        )
    doc.update(
        scheduler=svc.scheduler,
        sched_flags=[f for f in sched_flags_text(svc).split(",") if f],
        persistent=svc.persistent,
        timeout=svc.timeout if svc.persistent else None,
        netmask=mask_text(svc) if svc.persistent else None,
        pe=svc.pe_name or None,
        one_packet=svc.one_packet,
        flags=svc.flags,
        stats=asdict(svc.stats),
    )
    return doc


def dest_doc(dest: Dest) -> dict[str, Any]:
    tunnel: dict[str, str | int | None] | None = None
    if dest.fwd == uapi.IP_VS_CONN_F_TUNNEL and dest.tun_type < len(TUN_TYPES):
        tunnel = {"type": TUN_TYPES[dest.tun_type], "info": tun_info(dest)}
        if dest.tun_type == uapi.IP_VS_CONN_F_TUNNEL_TYPE_GUE:
            tunnel["port"] = dest.tun_port
        if dest.tun_type != uapi.IP_VS_CONN_F_TUNNEL_TYPE_IPIP:
            tunnel["csum"] = (
                ("nocsum", "csum", "remcsum")[dest.tun_flags]
                if dest.tun_flags < 3
                else dest.tun_flags
            )
    return {
        "af": _af(dest.af),
        "address": dest.addr,
        "port": dest.port,
        "forward": FWD_NAMES.get(dest.fwd, str(dest.fwd)),
        "weight": dest.weight,
        "u_threshold": dest.u_threshold,
        "l_threshold": dest.l_threshold,
        "active_conns": dest.active_conns,
        "inact_conns": dest.inact_conns,
        "persist_conns": dest.persist_conns,
        "tunnel": tunnel,
        "stats": asdict(dest.stats),
    }


def table_doc(info: Info | None, states: Sequence[ServiceState], fmt: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if info is not None:
        doc.update(version=info.version_text, conn_tab_size=info.conn_tab_size)
    doc["services"] = [
        dict(service_doc(s.service), dests=[dest_doc(d) for d in s.dests])
        for s in sort_states(states, fmt)
    ]
    return doc


def timeouts_doc(t: Timeouts) -> dict[str, Any]:
    return {"tcp": t.tcp, "tcpfin": t.tcp_fin, "udp": t.udp}


def daemons_doc(daemons: Sequence[Daemon]) -> dict[str, Any]:
    return {
        "daemons": [
            {
                "state": d.role,
                "mcast_interface": d.mcast_ifn,
                "syncid": d.syncid,
                "maxlen": d.sync_maxlen or None,
                "group": d.mcast_group or None,
                "port": d.mcast_port or None,
                "ttl": d.mcast_ttl or None,
            }
            for d in daemons
            if d.role != "none"
        ]
    }


def connections_doc(conns: Sequence[Connection]) -> dict[str, Any]:
    return {
        "connections": [
            {
                "protocol": c.protocol,
                "expires": c.expires,
                "state": c.state,
                "source": c.client,
                "source_port": c.cport,
                "virtual": c.vaddr,
                "virtual_port": c.vport,
                "destination": c.daddr,
                "destination_port": c.dport,
                "pe_name": c.pe_name or None,
                "pe_data": c.pe_data or None,
            }
            for c in conns
        ]
    }
