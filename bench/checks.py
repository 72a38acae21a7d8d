"""What active health checks cost: tcpvsd's CPU while it checks N servers (1,000 by default)
with `check = http GET / interval 1 timeout 0.5` (or tcp), every one answered by a small
asyncio server holding N listening sockets on 127.0.0.1 (issue target: under 5 % of a core).

    .venv/bin/python -m bench.checks                  # 1,000 servers, http, 20 s measured
    .venv/bin/python -m bench.checks --servers 200 --kind tcp --workers 2
    .venv/bin/python -m bench.checks --kind none      # the same tcpvsd, nothing checked
    .venv/bin/python -m bench.checks --syscalls 5     # then system calls per check (strace)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import cpu_seconds, free_port, stop, wait_until
from bench.systems import REPO, tcpvs_commands
from tests.support.syscalls import count_syscalls

# Answers every request on every port: N listening sockets, one process, uvloop.
SINK = """
import asyncio, resource, sys, uvloop
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"

class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        if b"\\r\\n\\r\\n" in data:
            self.transport.write(ANSWER)
            self.transport.close()

async def main(count):
    servers = [await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
               for _ in range(count)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.Event().wait()

uvloop.run(main(int(sys.argv[1])))
"""


def config(port: int, servers: list[int], check: str) -> str:
    lines = ["Virtual checked {", f"    listen = 127.0.0.1:{port}", "    scheduler = http"]
    lines += [f"    server = 127.0.0.1:{p} 1" for p in servers]
    lines += [f"    check = {check}", "}"]
    return "\n".join(lines) + "\n"


def states(tcpvsadm: list[str], sock: Path, env: dict[str, str] | None) -> dict[str, int]:
    done = subprocess.run(
        [*tcpvsadm, "--socket", str(sock), "-L", "--json"],
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    counts: dict[str, int] = {}
    for server in json.loads(done.stdout)["services"][0]["servers"]:
        counts[server["state"]] = counts.get(server["state"], 0) + 1
        for outcome in ("passed", "failed"):
            made = (server["checks"] or {}).get(outcome) or 0
            counts[outcome] = counts.get(outcome, 0) + made
    return counts


def syscalls_per_check(pid: int, seconds: float) -> dict[str, float]:
    """strace -c on tcpvsd (and its workers) for `seconds`: calls per check, by name, most
    first. A check is one connection, so the checks are the `connect` calls (counted through
    tcpvsadm they would miss the time strace takes to attach and detach)."""

    def wait() -> int:
        time.sleep(seconds)
        return 1  # (what count_syscalls calls requests; the checks are counted below)

    calls = count_syscalls(pid, wait).calls
    checks = calls.get("connect", 0)
    per_check = {name: n / checks for name, n in calls.items()} if checks else {}
    return dict(sorted(per_check.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.checks", description=__doc__.split("\n")[0])
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--kind", choices=("http", "tcp", "none"), default="http")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured time (20)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--syscalls", type=float, default=0.0, metavar="S", help="then strace tcpvsd S seconds"
    )
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    check = f"{args.kind} interval {args.interval:g} timeout {args.interval / 2:g}"
    if args.kind == "none":
        check = "none"
    traced: dict[str, float] = {}
    tcpvsd, tcpvsadm, env = tcpvs_commands()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(args.servers)], stdout=subprocess.PIPE, cwd=REPO
        )
        daemon = None
        try:
            assert sink.stdout is not None
            ports = [int(p) for p in sink.stdout.readline().split()]
            sock, conf = work / "tcpvsd.sock", work / "checks.conf"
            conf.write_text(config(free_port(), ports, check))
            argv_ = [*tcpvsd, "--socket", str(sock), "--workers", str(args.workers)]
            log = (work / "tcpvsd.log").open("wb")
            daemon = subprocess.Popen(argv_, stderr=log, env=env)
            wait_until(sock.exists, daemon, work / "tcpvsd.log")
            for cmd in (["-f", str(conf)], ["--start"]):
                subprocess.run([*tcpvsadm, "--socket", str(sock), *cmd], env=env, check=True)
            time.sleep(3 * args.interval + 1)  # every server checked a few times first
            # The checks are counted between two snapshots and the CPU between two readings
            # taken just after and just before them (a snapshot's own CPU is not counted). A
            # snapshot is taken some time after its call starts (tcpvsadm starting up): the
            # same time each call, so the checks' rate is timed from call start to call start.
            asked0 = time.monotonic()
            before = states(tcpvsadm, sock, env)
            (user0, sys0), t0 = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(args.seconds)
            (user1, sys1), t1 = cpu_seconds(daemon.pid), time.monotonic()
            after = states(tcpvsadm, sock, env)
            if args.syscalls:
                traced = syscalls_per_check(daemon.pid, args.syscalls)
        finally:
            if daemon is not None:
                stop(daemon)
            stop(sink)
    # (Not /proc's user/system split: it is sampled at the tick, and the checks' wake-ups,
    # timer-driven, skew it; `perf record -p PID` tells it, docs/health.md.)
    cpu = (user1 - user0) + (sys1 - sys0)
    rate = sum(after[k] - before[k] for k in ("passed", "failed")) / (t1 - asked0)
    per_check = f", {cpu / (t1 - t0) / rate * 1e6:.0f} µs per check" if rate else ""
    print(
        f"{args.servers} servers, check = {check}, tcpvsd --workers {args.workers}: "
        f"{cpu / (t1 - t0):.1%} of one core{per_check}, {rate:.0f} checks/s "
        f"({after['failed'] - before['failed']} failed), states {dict(sorted(after.items()))}"
    )
    if traced:
        top = ", ".join(f"{name} {calls:.2f}" for name, calls in list(traced.items())[:12])
        print(f"system calls per check (strace, {args.syscalls:g} s): {sum(traced.values()):.2f}")
        print(f"  {top}")


if __name__ == "__main__":
    main()
