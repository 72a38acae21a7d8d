"""Regression guard for the cost of a health check that does not depend on timing: system calls
per check (strace -c on a process running nothing but checks, uvloop as in tcpvsd), against a
budget measured on this code.

Every call but the epoll waits is made once per check, whatever the timing: an http check is
socket, connect, epoll_ctl, sendto, recvfrom, close; a tcp check the same without sendto and
recvfrom. A change that adds one (a setsockopt, a getsockopt on success, an epoll_ctl to modify
the registration, a read to see EOF, the loop's getpid per task) fails here. The waits depend on
how the checks' events happen to batch, so they get a looser bound of their own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.procs import ROOT, Backend, start_backend, stop
from tests.support.syscalls import count_syscalls

CHECKS, AT_ONCE = 400, 20  # as the checker starts them: a batch at a time
WAITS = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
# Budgets per check, as (waits, other calls). Measured 2026-11-29 on the 2-core dev machine
# (uvloop 0.23, Python 3.11): http 6.00 others, 0.3-0.45 waits (under strace, which slows the
# checks down and so batches them less); tcp 4.00 others, 0.1 waits. The prober this one
# replaced (asyncio streams, a task and a timeout per check) made 17 calls per http check.
BUDGETS = {"http": (1.0, 6.1), "tcp": (1.0, 4.1)}

# Runs batches of checks with one Prober when told "KIND PORT CHECKS AT_ONCE" on stdin, and
# answers with the number of checks that passed.
CHECKING = """
import asyncio, sys, uvloop
from tcpvs.health.probe import Prober, Target
from tcpvs.health.spec import parse_check

async def batch(loop, prober, target, size):
    results, done = [], loop.create_future()
    def on_result(result):
        results.append(result)
        if len(results) == size:
            done.set_result(None)
    for _ in range(size):
        prober.start(target, on_result)
    await done
    return sum(result.ok for result in results)

async def main():
    loop = asyncio.get_running_loop()  # once: in Python 3.11 each call is a getpid()
    prober = Prober(loop)
    print("ready", flush=True)
    for line in sys.stdin:
        kind, port, checks, at_once = line.split()
        target = Target(parse_check(kind), "127.0.0.1", int(port))
        passed = 0
        for _ in range(int(checks) // int(at_once)):
            passed += await batch(loop, prober, target, int(at_once))
            pause = loop.create_future()  # a pace the server keeps up with (its accept queue)
            loop.call_later(0.01, pause.set_result, None)
            await pause
        print(passed, flush=True)

uvloop.run(main())
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    backend = start_backend(tmp_path_factory.mktemp("checked"), "r1")
    yield backend
    stop(backend.proc)


@pytest.fixture
def checking() -> Iterator[subprocess.Popen[str]]:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHECKING],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    yield proc
    stop(proc)


@pytest.mark.parametrize("kind", ["http", "tcp"])
def test_system_calls_per_check(kind: str, server: Backend, checking) -> None:
    def checks(n: int) -> dict[str, int]:
        def drive() -> int:
            checking.stdin.write(f"{kind} {server.port} {n} {AT_ONCE}\n")
            checking.stdin.flush()
            assert int(checking.stdout.readline()) == n  # every check passed
            return n

        return count_syscalls(checking.pid, drive).calls

    # The calls of CHECKS checks more: what a command costs besides its checks (reading it,
    # writing the answer, a Target's getaddrinfo reading /etc/gai.conf) cancels out.
    once, twice = checks(CHECKS), checks(2 * CHECKS)
    per_check = {name: (twice.get(name, 0) - once.get(name, 0)) / CHECKS for name in twice}
    waits = sum(per_check.get(name, 0) for name in WAITS)
    others = sum(per_check.values()) - waits
    wait_budget, other_budget = BUDGETS[kind]
    assert others <= other_budget and waits <= wait_budget, per_check
    for name in ("socket", "connect", "epoll_ctl", "close"):
        assert per_check[name] == pytest.approx(1, abs=0.01), per_check
