"""The VM harness itself: boot, commands, exit codes, output, timeouts, background processes,
the shared folder, namespaces, failure reporting, and IPVS present in the guest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .harness import REPO, GuestCommandError, GuestTimeout, Vm, VmError
from .initramfs import MODULES
from .netns import build_topology, remove_topology

pytestmark = [pytest.mark.vm, pytest.mark.timeout(300)]


def test_guest_runs_debians_kernel_with_ipvs(ipvs_vm: Vm) -> None:
    assert ipvs_vm.run(["uname", "-r"], check=True).stdout == f"{ipvs_vm.kernel.version}\n"
    listing = ipvs_vm.run(["ipvsadm", "-Ln"], check=True).stdout
    assert listing.startswith("IP Virtual Server version 1.2.1 (size=4096)\n")
    assert "Prot LocalAddress:Port Scheduler Flags" in listing
    loaded = {line.split()[0] for line in ipvs_vm.run(["cat", "/proc/modules"]).stdout.splitlines()}
    assert {m for m in MODULES if m.startswith("ip_vs")} <= loaded
    # every scheduler works with Debian's ipvsadm, and the table is clean afterwards
    scheds = [
        m.removeprefix("ip_vs_") for m in MODULES if m.startswith("ip_vs_") and m != "ip_vs_pe_sip"
    ]
    script = "".join(f"ipvsadm -A -t 10.9.9.{i}:80 -s {s}\n" for i, s in enumerate(scheds, 1))
    ipvs_vm.run(f"set -e\n{script}", check=True)
    listed = ipvs_vm.run(["ipvsadm", "-Ln"], check=True).stdout
    assert [line.split()[2] for line in listed.splitlines()[3:]] == scheds
    ipvs_vm.run(["ipvsadm", "-C"], check=True)
    assert ipvs_vm.run(["ipvsadm", "-Ln"]).stdout.count("\n") == 3
    calls = 20
    start = time.monotonic()
    for _ in range(calls):
        ipvs_vm.run(["true"], check=True)
    print(
        f"boot {ipvs_vm.boot_seconds:.1f} s ({ipvs_vm.accel}), "
        f"{(time.monotonic() - start) / calls * 1000:.0f} ms per call"
    )


def test_guest_sees_the_host_root_read_only_through_an_overlay(ipvs_vm: Vm) -> None:
    # the same checkout and interpreter; writes stay in the guest
    probe = REPO / "tests" / "vm" / "probe-from-guest"
    script = f"cat {REPO}/pyproject.toml > /dev/null && echo guest > {probe} && cat {probe}"
    assert ipvs_vm.run(script, check=True).stdout == "guest\n"
    assert not probe.exists()
    version = ipvs_vm.python("import sys; print(sys.version)", check=True).stdout
    assert version == f"{sys.version}\n"


def test_exit_status_stdout_and_stderr(ipvs_vm: Vm) -> None:
    result = ipvs_vm.run("echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")
    argv = ipvs_vm.run(["printf", "%s|", "a b", "ü", "$HOME", "'"], check=True)
    assert argv.stdout == "a b|ü|$HOME|'|"  # no shell in between: arguments arrive verbatim
    assert ipvs_vm.run(["cat"], input="line 1\nline 2\n").stdout == "line 1\nline 2\n"
    raw = ipvs_vm.run(["printf", "\\377ok"]).stdout
    assert raw.encode("utf-8", "surrogateescape") == b"\xffok"
    missing = ipvs_vm.run(["no-such-command-here"])
    assert missing.returncode == 127 and "No such file" in missing.stderr
    assert ipvs_vm.run(["printenv", "X"], env={"X": "42"}).stdout == "42\n"
    assert ipvs_vm.run(["pwd"], cwd="/proc").stdout == "/proc\n"
    with pytest.raises(GuestCommandError, match=r"exited 3(.|\n)*boom"):
        ipvs_vm.run("echo boom >&2; exit 3", check=True)


def test_timeout_kills_the_process_group_and_the_vm_stays_usable(ipvs_vm: Vm) -> None:
    start = time.monotonic()
    with pytest.raises(GuestTimeout) as caught:
        ipvs_vm.run("echo started; sleep 300 & sleep 301", timeout=1)
    assert time.monotonic() - start < 15
    assert caught.value.stdout == "started\n"
    assert "timed out after 1 s" in str(caught.value)
    # both sleeps (the background one too) were killed with the group
    assert ipvs_vm.run(["pgrep", "-f", "sleep 30[01]"]).returncode == 1
    assert ipvs_vm.run(["echo", "alive"]).stdout == "alive\n"


def test_python_code_and_script_with_arguments(ipvs_vm: Vm) -> None:
    code = ipvs_vm.python("import sys; print(sys.argv[1:])", "a", "b c", check=True)
    assert code.stdout == "['a', 'b c']\n"
    script = ipvs_vm.shared / "script.py"
    script.write_text("import sys, tcpvs\nprint(sys.argv[1], tcpvs.__name__)\nsys.exit(5)\n")
    result = ipvs_vm.python(script, "arg")
    assert (result.returncode, result.stdout) == (5, "arg tcpvs\n")


def test_shared_folder_works_both_ways(ipvs_vm: Vm) -> None:
    (ipvs_vm.shared / "to-guest").write_text("from host\n")
    ipvs_vm.run(
        f"cat {ipvs_vm.shared}/to-guest > {ipvs_vm.shared}/from-guest; "
        f"echo from guest >> {ipvs_vm.shared}/from-guest",
        check=True,
    )
    assert (ipvs_vm.shared / "from-guest").read_text() == "from host\nfrom guest\n"


def test_spawned_process_runs_in_background_until_killed(ipvs_vm: Vm) -> None:
    with ipvs_vm.spawn("echo ready; echo note >&2; exec sleep 300") as proc:
        assert proc.wait_output("ready") == "ready\n"
        assert proc.poll() is None
        assert proc.output()[1] == "note\n"
        assert proc.kill() == -signal.SIGTERM
    assert ipvs_vm.spawn("exit 3").wait(timeout=30) == 3
    sleeper = ipvs_vm.spawn(["sleep", "300"])
    with pytest.raises(GuestTimeout):
        sleeper.wait(timeout=0.5)
    assert sleeper.kill(signal.SIGKILL) == -signal.SIGKILL


def test_topology_namespaces_reach_each_other_through_the_director(ipvs_vm: Vm) -> None:
    topo = build_topology(ipvs_vm, ("rs1", "rs2", "rs3"))
    try:
        assert set(ipvs_vm.run(["ip", "netns", "list"]).stdout.split()) >= set(topo.namespaces)
        # "Connection refused" is a RST that came back: a full round trip through the director
        probes = [(topo.client, ip) for ip in [*topo.servers.values(), *topo.servers6.values()]]
        probes += [(ns, topo.client_ip) for ns in topo.servers]
        script = "".join(
            f"ip netns exec {ns} bash -c ': > /dev/tcp/{ip}/9' 2>&1 | grep -q refused "
            f"&& echo {ns}:{ip} ok\n"
            for ns, ip in probes
        )
        got = ipvs_vm.run(script, timeout=120).stdout.splitlines()
        assert got == [f"{ns}:{ip} ok" for ns, ip in probes]
        assert ipvs_vm.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout == "1\n"
    finally:
        remove_topology(ipvs_vm, topo)
    assert ipvs_vm.run(["ip", "netns", "list"]).stdout == ""


def test_a_hung_guest_is_a_failure_that_shows_the_console(fresh_vm: Vm) -> None:
    fresh_vm.answer_grace = 2
    fresh_vm.run("echo marker-before-hang > /dev/console", check=True)
    with pytest.raises(VmError, match=r"no answer from the guest(.|\n)*marker-before-hang"):
        fresh_vm.run("kill -STOP $PPID", timeout=1)  # freezes the guest agent itself
    with pytest.raises(VmError, match="VM is down"):
        fresh_vm.run(["true"])
    pid = fresh_vm.qemu_pid
    fresh_vm.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_guest_panic_is_a_failure_that_shows_the_console(fresh_vm: Vm) -> None:
    with pytest.raises(VmError, match=r"(died|closed)(.|\n)*sysrq triggered crash"):
        fresh_vm.run("echo c > /proc/sysrq-trigger", timeout=30)


def test_qemu_dies_with_a_test_run_killed_before_teardown(tmp_path: Path) -> None:
    script = (
        "import os, sys; from pathlib import Path; from tests.vm.harness import boot_vm\n"
        "vm = boot_vm(Path(sys.argv[1])); print(vm.qemu_pid, flush=True); os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode and "VmUnavailable" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 10
    while status.exists() and "\nState:\tZ" not in status.read_text():  # gone, or a zombie
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # the qemu this test started, found by its PID
            pytest.fail("qemu outlived the process that started it")
        time.sleep(0.1)


def test_without_the_vm_the_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "TCPVS_VM": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-q",
            f"{Path(__file__)}::test_guest_runs_debians_kernel_with_ipvs",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "IPVS VM unavailable: disabled by TCPVS_VM=0" in done.stdout
