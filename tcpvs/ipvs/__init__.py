"""tcpvs.ipvs: the kernel's IPVS (layer 4) from Python, over generic netlink; no pyroute2.

    from tcpvs.ipvs import IPVS, Service, Dest
    with IPVS() as ipvs:
        svc = Service.tcp("192.0.2.1", 80, scheduler="rr")
        ipvs.add_service(svc)
        ipvs.add_dest(svc, Dest("10.0.0.2", 80, fwd=IP_VS_CONN_F_MASQ))

AsyncIPVS offers the same methods as coroutines. `pyipvsadm` is tcpvs.ipvs.cli.
"""

from tcpvs.ipvs.aio import AsyncIPVS
from tcpvs.ipvs.api import IPVS
from tcpvs.ipvs.errors import IPVSError, IPVSUnavailable
from tcpvs.ipvs.model import (
    Connection,
    Daemon,
    Dest,
    Info,
    Service,
    ServiceState,
    Stats,
    Timeouts,
)
from tcpvs.ipvs.uapi import (
    IP_VS_CONN_F_DROUTE,
    IP_VS_CONN_F_MASQ,
    IP_VS_CONN_F_TUNNEL,
    IP_VS_STATE_BACKUP,
    IP_VS_STATE_MASTER,
    IP_VS_SVC_F_ONEPACKET,
    IP_VS_SVC_F_PERSISTENT,
)

__all__ = [
    "IP_VS_CONN_F_DROUTE",
    "IP_VS_CONN_F_MASQ",
    "IP_VS_CONN_F_TUNNEL",
    "IP_VS_STATE_BACKUP",
    "IP_VS_STATE_MASTER",
    "IP_VS_SVC_F_ONEPACKET",
    "IP_VS_SVC_F_PERSISTENT",
    "IPVS",
    "AsyncIPVS",
    "Connection",
    "Daemon",
    "Dest",
    "IPVSError",
    "IPVSUnavailable",
    "Info",
    "Service",
    "ServiceState",
    "Stats",
    "Timeouts",
]
