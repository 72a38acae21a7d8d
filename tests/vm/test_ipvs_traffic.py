"""Real traffic through kernel IPVS programmed by pyipvsadm: HTTP from a client namespace to
the VIP of a NAT service lands on real servers in their namespaces, and `--apply` drains a
removed server that still has open connections before deleting it. The kernel table is read
back with Debian's ipvsadm, an observer independent of the code under test."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from .harness import Vm
from .netns import Topology, build_topology, remove_topology
from .traffic import (
    CLIENT,
    Dest,
    backend_paths,
    connections_by_dest,
    http_get,
    ipvs_table,
    pyipvsadm,
    pyipvsadm_argv,
    start_backends,
    wait_for,
)

pytestmark = [pytest.mark.vm, pytest.mark.timeout(300)]

SERVICE = "-t 10.0.1.100:80"
SERVICE6 = "-t [fd00:1::100]:80"


@pytest.fixture(scope="module")
def net(ipvs_vm: Vm) -> Iterator[Topology]:
    """A client and two real servers (rs1, rs2) running the suite's HTTP backend on port 80."""
    topo = build_topology(ipvs_vm, ("rs1", "rs2"))
    backends = start_backends(ipvs_vm, list(topo.servers))
    yield topo
    for proc in backends:
        proc.kill()
    remove_topology(ipvs_vm, topo)


@pytest.fixture
def clean_table(ipvs_vm: Vm) -> Iterator[None]:
    yield
    ipvs_vm.run(["ipvsadm", "-C"], check=True)


def test_http_through_a_nat_service_lands_on_both_servers(
    ipvs_vm: Vm, net: Topology, clean_table: None
) -> None:
    rs1, rs2 = net.servers.values()
    rs1_6, rs2_6 = (f"[{ip}]" for ip in net.servers6.values())
    rules = (
        f"-A {SERVICE} -s rr\n"
        f"-a {SERVICE} -r {rs1}:80 -m -w 1\n-a {SERVICE} -r {rs2}:80 -m -w 1\n"
        f"-A {SERVICE6} -s rr\n"
        f"-a {SERVICE6} -r {rs1_6}:80 -m -w 1\n-a {SERVICE6} -r {rs2_6}:80 -m -w 1\n"
    )
    done = pyipvsadm(ipvs_vm, "-R", input=rules)
    assert done.returncode == 0, done.stderr
    masq = Dest("Masq", 1, 0, 0)
    assert ipvs_table(ipvs_vm) == {
        "TCP 10.0.1.100:80": {f"{rs1}:80": masq, f"{rs2}:80": masq},
        "TCP [fd00:1::100]:80": {f"{rs1_6}:80": masq, f"{rs2_6}:80": masq},
    }

    paths4 = [f"/v4/{i}" for i in range(6)]
    paths6 = [f"/v6/{i}" for i in range(4)]
    answers = http_get(
        ipvs_vm,
        net.client,
        [f"http://{net.vip}{p}" for p in paths4] + [f"http://[{net.vip6}]{p}" for p in paths6],
    )
    assert [a["status"] for a in answers] == [200] * 10
    assert [a["body"] for a in answers] == [
        f"{a['backend']} GET {p}\n" for a, p in zip(answers, paths4 + paths6, strict=True)
    ]
    # round robin over fresh connections: the servers alternate, on both address families
    assert Counter(a["backend"] for a in answers[:6]) == {"rs1": 3, "rs2": 3}
    assert Counter(a["backend"] for a in answers[6:]) == {"rs1": 2, "rs2": 2}
    assert [a["backend"] for a in answers[:2]] in (["rs1", "rs2"], ["rs2", "rs1"])
    # what the servers saw, and what the kernel's connection table says
    for name in ("rs1", "rs2"):
        assert backend_paths(ipvs_vm, name) == [
            p for a, p in zip(answers, paths4 + paths6, strict=True) if a["backend"] == name
        ]
    assert connections_by_dest(ipvs_vm) == {
        f"{rs1}:80": 3,
        f"{rs2}:80": 3,
        f"{rs1_6}:80": 2,
        f"{rs2_6}:80": 2,
    }


def test_apply_drains_a_removed_server_with_open_connections(
    ipvs_vm: Vm, net: Topology, clean_table: None
) -> None:
    rs1, rs2 = net.servers.values()
    both = ipvs_vm.shared / "both.rules"
    both.write_text(
        f"-A {SERVICE} -s rr\n-a {SERVICE} -r {rs1}:80 -m -w 1\n-a {SERVICE} -r {rs2}:80 -m -w 1\n"
    )
    only_rs2 = ipvs_vm.shared / "only-rs2.rules"
    only_rs2.write_text(f"-A {SERVICE} -s rr\n-a {SERVICE} -r {rs2}:80 -m -w 1\n")
    done = pyipvsadm(ipvs_vm, "--apply", str(both))
    assert done.returncode == 0, done.stderr
    svc = "TCP 10.0.1.100:80"

    # four keep-alive connections stay open: two on each server
    ready, release = ipvs_vm.shared / "held", ipvs_vm.shared / "release"
    with ipvs_vm.spawn(
        [
            ipvs_vm.python_exe,
            str(CLIENT),
            "hold",
            f"http://{net.vip}/held",
            "4",
            str(ready),
            str(release),
        ],
        netns=net.client,
    ) as holder:
        first = json.loads(
            wait_for(
                lambda: ready.exists() and ready.read_text(), "the held connections", timeout=120
            )
        )
        assert Counter(a["backend"] for a in first) == {"rs1": 2, "rs2": 2}
        assert ipvs_table(ipvs_vm)[svc][f"{rs1}:80"][:3] == ("Masq", 1, 2)  # weight, ActiveConn

        with ipvs_vm.spawn(
            pyipvsadm_argv(ipvs_vm, "--apply", str(only_rs2), "--drain-timeout", "120")
        ) as applying:
            drained = wait_for(
                lambda: ipvs_table(ipvs_vm)[svc][f"{rs1}:80"].weight == 0,
                "rs1 drained (weight 0)",
                timeout=120,
            )
            assert drained
            # new connections avoid the drained server; its open ones keep it in the table
            fresh = http_get(ipvs_vm, net.client, [f"http://{net.vip}/new/{i}" for i in range(4)])
            assert [a["backend"] for a in fresh] == ["rs2"] * 4
            table = ipvs_table(ipvs_vm)[svc]
            assert table[f"{rs1}:80"][:3] == ("Masq", 0, 2)
            assert table[f"{rs2}:80"].weight == 1
            assert applying.poll() is None, applying.output()

            # the drained server still answers on the connections it has; then they close
            release.touch()
            assert holder.wait(timeout=120) == 0, holder.output()
            held = json.loads(holder.output()[0])
            assert [h["second"]["backend"] for h in held] == [a["backend"] for a in first]
            assert all(h["second"]["status"] == 200 for h in held)

            assert applying.wait(timeout=120) == 0, applying.output()
    assert list(ipvs_table(ipvs_vm)[svc]) == [f"{rs2}:80"]
