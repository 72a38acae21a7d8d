"""Network namespaces inside the test VM: a client and real servers joined to the director
(the guest's root namespace) by veth pairs, on subnets that exist only inside the guest."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from .harness import GuestResult, Vm

CLIENT_NET, SERVER_NET = "10.0.1", "10.0.2"
CLIENT_NET6, SERVER_NET6 = "fd00:1::", "fd00:2::"
BRIDGE = "br-rs"


@dataclass(frozen=True)
class Topology:
    """Addresses of one topology. The director owns .1 of both subnets and the VIPs; server i
    (0-based, in the order given) owns .(i+2); every namespace's default route is the director,
    so NAT replies come back through IPVS."""

    client: str = "client"  # namespace name
    client_ip: str = f"{CLIENT_NET}.2"
    client_ip6: str = f"{CLIENT_NET6}2"
    director_ip: str = f"{CLIENT_NET}.1"  # client side
    director_ip6: str = f"{CLIENT_NET6}1"
    gateway_ip: str = f"{SERVER_NET}.1"  # server side (bridge BRIDGE)
    gateway_ip6: str = f"{SERVER_NET6}1"
    vip: str = f"{CLIENT_NET}.100"
    vip6: str = f"{CLIENT_NET6}100"
    servers: dict[str, str] = field(default_factory=dict)  # namespace -> IPv4
    servers6: dict[str, str] = field(default_factory=dict)  # namespace -> IPv6

    @property
    def namespaces(self) -> list[str]:
        return [self.client, *self.servers]


def _plan(servers: Sequence[str]) -> Topology:
    if len(servers) > 200 or not all(re.fullmatch(r"[a-z][a-z0-9-]{0,11}", n) for n in servers):
        raise ValueError("at most 200 servers, named [a-z][a-z0-9-]{0,11} (veth v-NAME)")
    return Topology(
        servers={n: f"{SERVER_NET}.{i + 2}" for i, n in enumerate(servers)},
        servers6={n: f"{SERVER_NET6}{i + 2:x}" for i, n in enumerate(servers)},
    )


def _batch(netns: str | None, commands: list[str]) -> str:
    """A shell line feeding commands to one `ip -batch` (one process, not one per command)."""
    prefix = f"ip -n {shlex.quote(netns)}" if netns else "ip"
    return f"{prefix} -batch - <<'EOF'\n" + "\n".join(commands) + "\nEOF"


def _inside(ip: str, ip6: str, gw: str, gw6: str) -> list[str]:
    """ip commands run inside a namespace hanging off the director by its eth0."""
    return [
        "link set lo up",
        f"addr add {ip}/24 dev eth0",
        f"addr add {ip6}/64 dev eth0 nodad",
        "link set eth0 up",
        f"route add default via {gw}",
        f"route add default via {gw6}",
    ]


def build_topology(vm: Vm, servers: Sequence[str] = ("rs1", "rs2")) -> Topology:
    """Create the namespaces in one guest call; returns their addresses."""
    topo = _plan(servers)
    director = [f"netns add {ns}" for ns in topo.namespaces]
    director += [f"link add v-{ns} type veth peer name eth0 netns {ns}" for ns in topo.namespaces]
    director += [
        f"addr add {topo.director_ip}/24 dev v-{topo.client}",
        f"addr add {topo.vip}/24 dev v-{topo.client}",
        f"addr add {topo.director_ip6}/64 dev v-{topo.client} nodad",
        f"addr add {topo.vip6}/64 dev v-{topo.client} nodad",
        f"link set v-{topo.client} up",
        f"link add {BRIDGE} type bridge",
        f"addr add {topo.gateway_ip}/24 dev {BRIDGE}",
        f"addr add {topo.gateway_ip6}/64 dev {BRIDGE} nodad",
        f"link set {BRIDGE} up",
        *(f"link set v-{ns} master {BRIDGE} up" for ns in topo.servers),
    ]
    script = [
        "set -e",
        _batch(None, director),
        _batch(
            topo.client,
            _inside(topo.client_ip, topo.client_ip6, topo.director_ip, topo.director_ip6),
        ),
        *(
            _batch(ns, _inside(ip, topo.servers6[ns], topo.gateway_ip, topo.gateway_ip6))
            for ns, ip in topo.servers.items()
        ),
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    ]
    vm.run("\n".join(script), timeout=60, check=True)
    return topo


def remove_topology(vm: Vm, topo: Topology) -> GuestResult:
    """Delete the namespaces (their veth pairs go with them) and the bridge."""
    script = [
        *(f"ip netns del {shlex.quote(ns)}" for ns in topo.namespaces),
        f"ip link del {BRIDGE}",
    ]
    return vm.run("\n".join(script), timeout=60, check=True)


def wait_listening(vm: Vm, netns: str | None, host: str, port: int, timeout: float = 60) -> None:
    """Wait until a TCP connect to host:port from netns succeeds (bash's /dev/tcp: no Python
    start-up, which costs about a second in the guest)."""
    target = f"/dev/tcp/{host}/{port}"
    loop = (
        f"end=$((SECONDS + {int(timeout)})); "
        f"until (: > {shlex.quote(target)}) 2>/dev/null; do "
        f"[ $SECONDS -lt $end ] || exit 1; sleep 0.1; done"
    )
    result = vm.run(["bash", "-c", loop], netns=netns, timeout=timeout + 10)
    assert result.returncode == 0, f"nothing listens on {host}:{port} (netns {netns})"
