"""`pyipvsadm --apply FILE --watch` on the real kernel: three HTTP servers behind a NAT VIP,
health-checked from the director. A stopped server gets weight 0 within fall x interval +
interval while the traffic through the VIP goes on, and its weight back after `rise` checks
once it returns; hand edits with Debian's ipvsadm are undone within a tick; SIGHUP with a
broken file changes nothing, with a good one applies it; SIGTERM exits 0 and leaves the
table. Times are measured in the guest (its clock, shell loops polling every 50 ms).

The tests share one watcher and run in file order; each leaves the lab as it found it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from .harness import GuestProcess, Vm
from .netns import Topology, build_topology, remove_topology
from .traffic import (
    CLIENT,
    backend_paths,
    ipvs_table,
    pyipvsadm_argv,
    spawn_backend,
    start_backends,
    wait_for,
)

pytestmark = [pytest.mark.vm, pytest.mark.timeout(300)]

SERVERS = ("rs1", "rs2", "rs3")
SERVICE = "TCP 10.0.1.100:80"
INTERVAL, RISE, FALL = 1.0, 2, 2
CHECK = f"http GET / expect 200 interval {INTERVAL:g} timeout 0.5 rise {RISE} fall {FALL}"
TICK_BOUND = 2.0  # seconds: a hand edit is undone by the next tick (1 s) and its read-back


@dataclass
class Lab:
    vm: Vm
    topo: Topology
    rules: Path
    backends: dict[str, GuestProcess]
    watcher: GuestProcess

    def ip(self, name: str) -> str:
        return self.topo.servers[name]

    def log(self) -> str:
        return self.watcher.output()[1]

    def weights(self) -> dict[str, tuple[str, int]]:
        """{"10.0.2.2:80": ("Masq", 1), ...} of the service, as Debian's ipvsadm lists it."""
        table = ipvs_table(self.vm)
        return {rs: (d.forward, d.weight) for rs, d in table.get(SERVICE, {}).items()}

    def wanted(self, **weights: int | None) -> dict[str, tuple[str, int]]:
        """The servers at weight 1, but for those named (None: not there)."""
        wanted = {f"{self.ip(n)}:80": ("Masq", weights.get(n, 1)) for n in SERVERS}
        return {rs: (fwd, w) for rs, (fwd, w) in wanted.items() if w is not None}

    def sighup(self) -> None:
        self.vm.run(["kill", "-HUP", str(self.watcher.pid)], check=True)

    def wait_log(self, text: str, after: int = 0) -> None:
        wait_for(lambda: text in self.log()[after:], f"the watcher to log {text!r}", 30)


def rules(topo: Topology, check: str = CHECK, **weights: int | None) -> str:
    """The watcher's file: the servers at weight 1, but for those named (None: left out)."""
    lines = [f'-A -t {topo.vip}:80 -s rr --check "{check}"']
    for name, ip in topo.servers.items():
        weight = weights.get(name, 1)
        if weight is not None:
            lines.append(f"-a -t {topo.vip}:80 -r {ip}:80 -m -w {weight}")
    return "\n".join(lines) + "\n"


def timed(vm: Vm, start: str, until: str, timeout: int = 30) -> tuple[float, float]:
    """In the guest: run the shell lines `start`, note the time, then poll the shell
    condition `until` every 50 ms; returns (time noted, seconds until it held)."""
    script = (
        f"end=$((SECONDS + {timeout}))\n"
        'late() { echo "timed out: $1" >&2; exit 1; }\n'
        f"{start}\n"
        "t0=$(date +%s.%N)\n"
        f"until {until}; do [ $SECONDS -lt $end ] || late {shlex.quote(until)}; sleep 0.05; done\n"
        'echo "$t0 $(date +%s.%N)"\n'
    )
    t0, t1 = map(
        float, vm.run(["bash", "-c", script], timeout=timeout + 10, check=True).stdout.split()
    )
    return t0, t1 - t0


AWAIT = '[ $SECONDS -lt $end ] || late "the port"; sleep 0.02'  # a `start` loop's body


def weight_is(ip: str, weight: int) -> str:
    """A shell condition: Debian's ipvsadm lists the server with that weight."""
    return f"ipvsadm -Ln | grep -Eq '^  -> {ip.replace('.', '[.]')}:80 +Masq +{weight} '"


@pytest.fixture(scope="module")
def lab(ipvs_vm: Vm) -> Iterator[Lab]:
    topo = build_topology(ipvs_vm, SERVERS)
    procs: list[GuestProcess] = []  # the watcher, then the backends as first started
    try:
        backends = dict(zip(SERVERS, start_backends(ipvs_vm, list(SERVERS)), strict=True))
        procs += backends.values()
        path = ipvs_vm.shared / "web.rules"
        path.write_text(rules(topo))
        watcher = ipvs_vm.spawn(pyipvsadm_argv(ipvs_vm, "--apply", str(path), "--watch"))
        procs.insert(0, watcher)
        lab = Lab(ipvs_vm, topo, path, backends, watcher)
        wait_for(lambda: lab.weights() == lab.wanted(), "the watcher to apply the file", 60)
        yield lab
        procs.append(backends["rs1"])  # restarted by a test
    finally:
        for proc in procs:
            proc.kill()
        remove_topology(ipvs_vm, topo)
        ipvs_vm.run(["ipvsadm", "-C"], check=True)


def test_the_file_is_applied_and_its_checks_run(lab: Lab) -> None:
    assert lab.log().startswith(
        f"pyipvsadm: watching {lab.rules}: 1 service, 3 servers, 1 check\n"
        f"pyipvsadm: service {SERVICE} is missing: -A -t {lab.topo.vip}:80 -s rr\n"
    )
    assert lab.watcher.poll() is None
    # every server is checked by the director: each has been asked for / (nothing else asks)
    for name in SERVERS:
        wait_for(partial(backend_paths, lab.vm, name), f"{name} checked", 10)
        assert set(backend_paths(lab.vm, name)) == {"/"}


def test_a_stopped_server_gets_weight_0_while_traffic_goes_on(lab: Lab) -> None:
    vm, rs1 = lab.vm, lab.ip("rs1")
    ready, stop = vm.shared / "loop-ready", vm.shared / "loop-stop"
    client = vm.spawn(
        [vm.python_exe, str(CLIENT), "loop", f"http://{lab.topo.vip}/", str(ready), str(stop)],
        netns=lab.topo.client,
    )
    wait_for(ready.exists, "the client's first answer", 60)
    mark = len(lab.log())

    # rs1 stops (its port refuses from t0 on); its weight is 0 `down` seconds later
    stopped, down = timed(
        vm,
        f"kill -TERM {lab.backends['rs1'].pid}\n"
        f"while (: > /dev/tcp/{rs1}/80) 2>/dev/null; do {AWAIT}; done",
        weight_is(rs1, 0),
    )
    print(f"weight 0 after {down:.2f} s (bound {FALL * INTERVAL + INTERVAL:g} s)")
    assert down <= FALL * INTERVAL + INTERVAL
    weight_0_at = stopped + down
    lab.wait_log(f"server {rs1}:80 is down: {FALL} failed checks: connection refused", mark)
    assert (
        f"server {rs1}:80 has weight 1 (want 0) (down): -e -t 10.0.1.100:80 -r {rs1}:80 -m -w 0"
        in lab.log()[mark:]
    )

    vm.run(["sleep", "2"])  # traffic to the two left
    stop.touch()
    assert client.wait(timeout=60) == 0, client.output()
    answers = json.loads(client.output()[0])
    after = [a for a in answers if a["time"] >= weight_0_at]
    failed = [a for a in answers if a["status"] != 200]
    print(
        f"{len(answers)} requests, {len(failed)} failed (all before weight 0), {len(after)} after"
    )
    assert len(after) >= 10
    assert all(a["status"] == 200 and a["backend"] in ("rs2", "rs3") for a in after), after
    assert all(stopped - 1 <= a["time"] < weight_0_at for a in failed), failed
    assert lab.weights() == lab.wanted(rs1=0)

    # back: the file's weight after `rise` passed checks
    lab.backends["rs1"] = spawn_backend(vm, "rs1")
    mark = len(lab.log())
    _, up = timed(
        vm,
        f"until (: > /dev/tcp/{rs1}/80) 2>/dev/null; do {AWAIT}; done",
        weight_is(rs1, 1),
        timeout=60,
    )
    print(f"weight back after {up:.2f} s (bound {RISE * INTERVAL + INTERVAL:g} s)")
    assert up <= RISE * INTERVAL + INTERVAL
    lab.wait_log(f"server {rs1}:80 is up: {RISE} passed checks: HTTP 200", mark)
    assert lab.weights() == lab.wanted()


def test_hand_edits_are_undone_within_a_tick(lab: Lab) -> None:
    vm, vip = lab.vm, lab.topo.vip
    rs2 = lab.ip("rs2")
    mark = len(lab.log())
    all_back = " && ".join(weight_is(lab.ip(n), 1) for n in SERVERS)
    _, recreated = timed(vm, f"ipvsadm -D -t {vip}:80", all_back)
    print(f"deleted service back after {recreated:.2f} s")
    assert recreated <= TICK_BOUND
    lab.wait_log(f"service {SERVICE} is missing: -A -t {vip}:80 -s rr", mark)

    _, restored = timed(vm, f"ipvsadm -e -t {vip}:80 -r {rs2}:80 -m -w 9", weight_is(rs2, 1))
    print(f"hand-set weight restored after {restored:.2f} s")
    assert restored <= TICK_BOUND
    lab.wait_log(f"server {rs2}:80 has weight 9 (want 1): -e -t {vip}:80 -r {rs2}:80 -m -w 1")

    _, removed = timed(
        vm,
        f"ipvsadm -a -t {vip}:80 -r 10.0.2.99:80 -m",
        "! ipvsadm -Ln | grep -q 10.0.2.99",
    )
    assert removed <= TICK_BOUND
    lab.wait_log(f"server 10.0.2.99:80 is not in the file, drained: -d -t {vip}:80 -r 10.0.2.99:80")
    assert lab.weights() == lab.wanted()


def test_sighup_applies_a_good_file_and_refuses_a_broken_one(lab: Lab) -> None:
    vm, vip, rs2 = lab.vm, lab.topo.vip, lab.ip("rs2")
    original = lab.rules.read_text()
    try:
        lab.rules.write_text(rules(lab.topo, check=CHECK.replace("rise 2", "rise 0"), rs2=5))
        mark = len(lab.log())
        lab.sighup()
        lab.wait_log(f"{lab.rules}:1: check: rise must be a whole number from 1 to 100", mark)
        assert lab.log()[mark:].endswith("; the rules in force stay\n")
        # the rules in force still are: rs2 keeps weight 1, even against a hand edit
        _, restored = timed(vm, f"ipvsadm -e -t {vip}:80 -r {rs2}:80 -m -w 5", weight_is(rs2, 1))
        assert restored <= TICK_BOUND
        assert lab.weights() == lab.wanted()

        lab.rules.write_text(rules(lab.topo, rs2=5, rs3=None))
        mark = len(lab.log())
        lab.sighup()
        wait_for(lambda: lab.weights() == lab.wanted(rs2=5, rs3=None), "the new file", 10)
        lab.wait_log(f"reloaded {lab.rules}: 1 service, 2 servers, 1 check", mark)
        assert f"server {lab.ip('rs3')}:80 is not in the file, draining" in lab.log()[mark:]
    finally:
        lab.rules.write_text(original)
        lab.sighup()
        wait_for(lambda: lab.weights() == lab.wanted(), "the original file back", 10)


def test_sigterm_exits_0_and_leaves_the_table(lab: Lab) -> None:
    before = ipvs_table(lab.vm)
    assert lab.watcher.kill() == 0, lab.watcher.output()
    assert lab.log().endswith("pyipvsadm: stopped; the IPVS table stays as it is\n")
    assert ipvs_table(lab.vm) == before
