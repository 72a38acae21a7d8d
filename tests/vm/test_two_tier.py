"""Two tiers: a kernel IPVS NAT service (programmed by pyipvsadm) in front of two tcpvsd nodes,
each in its own namespace, which route every request by its URI to the real servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import GuestProcess, Vm
from .netns import Topology, build_topology, remove_topology, wait_listening
from .traffic import backend_paths, connections_by_dest, http_get, pyipvsadm, start_backends

pytestmark = [pytest.mark.vm, pytest.mark.timeout(300)]

L7_NODES = ("l7a", "l7b")
L7_PORT = 8080


def l7_config(topo: Topology) -> str:
    web, img = topo.servers["web"], topo.servers["img"]
    return (
        f"Virtual site {{\n"
        f"    listen = 0.0.0.0:{L7_PORT}\n"
        f"    scheduler = http\n"
        f"    server = {web}:80 1\n"
        f"    server = {img}:80 1\n"
        f'    rule = pattern "^/images/" use server {img}:80\n'
        f'    rule = pattern ".*" use server {web}:80\n'
        f"}}\n"
    )


@pytest.fixture(scope="module")
def tiers(ipvs_vm: Vm) -> Iterator[Topology]:
    """Namespaces l7a, l7b (tcpvsd on :8080) and web, img (HTTP backends on :80)."""
    topo = build_topology(ipvs_vm, (*L7_NODES, "web", "img"))
    procs: list[GuestProcess] = []
    try:
        conf = ipvs_vm.shared / "site.conf"
        conf.write_text(l7_config(topo))
        procs += [
            ipvs_vm.spawn(
                [
                    ipvs_vm.python_exe,
                    "-m",
                    "tcpvs.daemon",
                    "-v",
                    "-f",
                    str(conf),
                    "--socket",
                    f"/run/tcpvsd-{node}.sock",
                ],
                netns=node,
            )
            for node in L7_NODES
        ]
        procs += start_backends(ipvs_vm, ["web", "img"])
        for node, daemon in zip(L7_NODES, procs, strict=False):
            try:
                wait_listening(ipvs_vm, None, topo.servers[node], L7_PORT, timeout=120)
            except AssertionError as exc:
                raise AssertionError(f"tcpvsd in {node}: {daemon.output()}") from exc
        yield topo
    finally:
        for proc in procs:
            proc.kill()
        remove_topology(ipvs_vm, topo)
        ipvs_vm.run(["ipvsadm", "-C"], check=True)


def test_requests_through_the_vip_land_where_the_l7_rules_say(ipvs_vm: Vm, tiers: Topology) -> None:
    nodes = [f"{tiers.servers[n]}:{L7_PORT}" for n in L7_NODES]
    rules = "-A -t 10.0.1.100:80 -s rr\n" + "".join(
        f"-a -t 10.0.1.100:80 -r {node} -m -w 1\n" for node in nodes
    )
    done = pyipvsadm(ipvs_vm, "-R", input=rules)
    assert done.returncode == 0, done.stderr

    paths = [
        "/images/a.png",
        "/index.html",
        "/images/b.png",
        "/about",
        "/images/c.png",
        "/docs/images/x.png",
        "/",
        "/images/",
    ]
    answers = http_get(ipvs_vm, tiers.client, [f"http://{tiers.vip}{p}" for p in paths])
    expected = ["img" if p.startswith("/images/") else "web" for p in paths]
    assert [a["status"] for a in answers] == [200] * len(paths)
    assert [a["backend"] for a in answers] == expected
    assert [a["body"] for a in answers] == [
        f"{b} GET {p}\n" for b, p in zip(expected, paths, strict=True)
    ]
    # each real server saw exactly its share, once; IPVS spread the connections over both
    # tcpvsd nodes, so each node routed both kinds of request correctly
    assert backend_paths(ipvs_vm, "img") == [p for p in paths if p.startswith("/images/")]
    assert backend_paths(ipvs_vm, "web") == [p for p in paths if not p.startswith("/images/")]
    assert connections_by_dest(ipvs_vm) == {node: len(paths) // 2 for node in nodes}
