"""Real traffic in the test VM: backends in server namespaces, the guest HTTP client,
pyipvsadm, and the kernel's IPVS table as Debian's own ipvsadm shows it (an independent view)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .harness import REPO, GuestProcess, GuestResult, Vm

CLIENT = Path(__file__).with_name("guest_client.py")
PYIPVSADM = (
    "import sys; sys.argv[0] = 'pyipvsadm'; from tcpvs.ipvs.cli import main; sys.exit(main())"
)


class Dest(NamedTuple):
    forward: str
    weight: int
    active: int
    inactive: int


def spawn_backend(vm: Vm, name: str, port: int = 80) -> GuestProcess:
    """tests.support.backend NAME in namespace NAME on every address, logging its requests to
    vm.shared/NAME.log (see backend_paths); it prints "ready" once it listens."""
    return vm.spawn(
        [
            vm.python_exe,
            "-m",
            "tests.support.backend",
            name,
            "--host",
            "",
            "--port",
            str(port),
            "--log",
            str(vm.shared / f"{name}.log"),
        ],
        netns=name,
    )


def start_backends(vm: Vm, names: list[str], port: int = 80) -> list[GuestProcess]:
    """spawn_backend for each name; waits until all listen."""
    procs = [spawn_backend(vm, name, port) for name in names]
    for proc in procs:
        proc.wait_output("ready", timeout=90)
    return procs


def backend_paths(vm: Vm, name: str) -> list[str]:
    """Request paths backend NAME received, in order."""
    log = vm.shared / f"{name}.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line)["path"] for line in lines]


def http_get(vm: Vm, netns: str, urls: list[str]) -> list[dict[str, Any]]:
    """GET each URL on its own connection from netns; [{"status", "backend", "body"}, ...]."""
    return json.loads(vm.python(CLIENT, "get", *urls, netns=netns, timeout=180, check=True).stdout)


def pyipvsadm_argv(vm: Vm, *args: str) -> list[str]:
    """The command line of this checkout's pyipvsadm (installed or not); skips the test while
    tcpvs/ipvs/cli.py does not exist yet."""
    if not (REPO / "tcpvs" / "ipvs" / "cli.py").exists():
        pytest.skip("pyipvsadm (tcpvs/ipvs/cli.py) does not exist yet")
    return [vm.python_exe, "-c", PYIPVSADM, *args]


def pyipvsadm(vm: Vm, *args: str, input: str | None = None, timeout: float = 120) -> GuestResult:
    return vm.run(pyipvsadm_argv(vm, *args), input=input, timeout=timeout)


def ipvs_table(vm: Vm) -> dict[str, dict[str, Dest]]:
    """`ipvsadm -Ln` parsed: {"TCP 10.0.1.100:80": {"10.0.2.2:80": Dest(...)}}."""
    table: dict[str, dict[str, Dest]] = {}
    service = ""
    for line in vm.run(["ipvsadm", "-Ln"], check=True).stdout.splitlines()[3:]:
        fields = line.split()
        if fields[0] == "->":
            table[service][fields[1]] = Dest(fields[2], *map(int, fields[3:6]))
        else:
            service = f"{fields[0]} {fields[1]}"
            table[service] = {}
    return table


def connections_by_dest(vm: Vm) -> Counter[str]:
    """How many entries of the IPVS connection table (`ipvsadm -Lnc`) go to each real server."""
    lines = vm.run(["ipvsadm", "-Lnc"], check=True).stdout.splitlines()[2:]
    return Counter(line.split()[5] for line in lines)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll check() (a few guest calls at most per second) until it returns something true."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)
    return value
