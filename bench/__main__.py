"""tcpvs against HAProxy and nginx, side by side on loopback (bench/run.sh).

Starts the backend and every system, measures them interleaved round by round with wrk, counts
system calls, stops everything by PID, and writes the report (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from types import FrameType

from bench.measure import Cell, measure, wrk_script
from bench.procs import Procs, bench_run, set_group_nice
from bench.report import Results, Syscalls, loadavg, machine_info, publish, render
from bench.systems import REPO, SIZES, SYSTEMS, Bench, Running, paths, start_backend
from tests.support.syscalls import count_syscalls, keepalive_requests

TOOLS = {
    "wrk": "wrk",
    "haproxy": "haproxy",
    "nginx": "nginx",
    "taskset": "util-linux",
    "strace": "strace",
}  # command -> Debian package
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5, help="wrk seconds per cell (5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all cells (3)")
    ap.add_argument("--conns", type=int, default=50, help="wrk connections (50)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds per system before round 1")
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    names = [s.name for s in SYSTEMS]
    ap.add_argument("--systems", nargs="+", choices=names, default=names)
    ap.add_argument("--wrk-cpu", type=int, default=0, help="CPU for wrk and the backend (0)")
    ap.add_argument("--proxy-cpu", type=int, default=1, help="CPU for the proxy (1)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    ap.add_argument(
        "--syscall-requests",
        type=int,
        default=1000,
        help="requests per strace pass, 0 to skip (1000; at most 256 MiB of bodies)",
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the bench and all it starts (-10: ahead of other work; root)",
    )
    ap.add_argument("--note", default="", help="a remark for the report (e.g. other load)")
    ap.add_argument("--publish", action="store_true", help=f"also write into {DOC.name}")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    return ap.parse_args(argv)


def ensure_tools() -> None:
    """Install the Debian packages of missing tools (wrk, haproxy, nginx, ...)."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if not missing:
        return
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        sys.exit(f"missing {', '.join(missing)}: run `{' '.join(install)}` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"bench: installing {' '.join(missing)}", file=sys.stderr)
    if subprocess.run(install, env=env, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, timeout=900, check=True)
        subprocess.run(install, env=env, timeout=900, check=True)


def check_routing(running: Running, size: int) -> None:
    """Each path answers 200 with the full body, from the backend the routing rules name."""
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    try:
        for path in paths(size):
            conn.request("GET", path)
            resp = conn.getresponse()
            body, tag = resp.read(), resp.getheader("X-Backend")
            want = "b1" if running.proc is None or path.startswith("/a/") else "b2"
            if resp.status != 200 or len(body) != size or tag != want:
                raise RuntimeError(
                    f"GET {path}: {resp.status}, {len(body)} B from {tag}, want {want}"
                )
    finally:
        conn.close()


def start_systems(bench: Bench, names: list[str]) -> tuple[dict[str, Running], dict[str, str]]:
    running: dict[str, Running] = {}
    missing: dict[str, str] = {}
    for system in (s for s in SYSTEMS if s.name in names):
        reason = system.unavailable()
        if reason is None:
            try:
                running[system.name] = system.start(bench)
                for size in SIZES.values():
                    check_routing(running[system.name], size)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                running.pop(system.name, None)
                reason = str(exc).strip()
        if reason is not None:
            missing[system.name] = reason.splitlines()[0]
            print(f"bench: {system.name} not available: {reason}", file=sys.stderr)
    return running, missing


def run(
    args: argparse.Namespace, bench: Bench, wrk_cpu: int | None
) -> tuple[Results, dict[str, str], Syscalls]:
    start_backend(bench, wrk_cpu)
    running, missing = start_systems(bench, args.systems)
    script = wrk_script(bench.work)

    def cell(name: str, size: int, seconds: int) -> Cell:
        r = running[name]
        return measure(
            r.port,
            paths(size),
            r.proc.pid if r.proc else None,
            seconds=seconds,
            conns=args.conns,
            cpu=wrk_cpu,
            script=script,
        )

    def attempt(name: str, size: int, seconds: int) -> Cell | None:
        """One cell; a system that fails or exits is dropped from the rest of the run."""
        try:
            c = cell(name, size, seconds)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            c, why = None, str(exc).strip().splitlines()[0]
        proc = running[name].proc
        if proc is not None and proc.poll() is not None:
            c, why = None, f"exited {proc.returncode} during the run"
        if c is None:
            missing[name] = why
            del running[name]
            print(f"bench: {name} dropped: {why}", file=sys.stderr)
        return c

    for name in list(running):
        attempt(name, SIZES[args.sizes[0]], args.warmup)
    results: Results = {size: {name: [] for name in running} for size in args.sizes}
    order = list(running)
    for rnd in range(args.rounds):
        order = order[1:] + order[:1] if rnd else order  # rotate: no system always goes first
        for size in args.sizes:
            for name in [n for n in order if n in running]:
                if (c := attempt(name, SIZES[size], args.seconds)) is None:
                    continue
                results[size][name].append(c)
                cpu = f"{c.cpu_us:.1f} µs/req" if c.cpu_us is not None else ""
                print(
                    f"round {rnd + 1}/{args.rounds}  {size:>6}  {name:<15} "
                    f"{c.rps:>9.0f} req/s  p99 {c.p99_ms:6.2f} ms  {cpu}",
                    file=sys.stderr,
                )
    counts: Syscalls = {}
    if args.syscall_requests > 0 and shutil.which("strace"):
        for size in args.sizes:
            n = min(args.syscall_requests, max(1, (256 << 20) // SIZES[size]))
            for name, r in running.items():
                if r.proc is None:
                    continue
                try:
                    counts.setdefault(size, {})[name] = count_syscalls(
                        r.proc.pid,
                        lambda r=r, n=n, s=SIZES[size]: keepalive_requests(r.port, paths(s), n),
                    )
                except (RuntimeError, OSError) as exc:
                    print(f"bench: syscalls of {name} at {size}: {exc}", file=sys.stderr)
    return results, missing, counts


def pinned_cpus(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """(the clients' CPU, the proxy's): --wrk-cpu and --proxy-cpu when both may be used and
    differ, else (None, None): no pinning (--no-pin)."""
    wanted = {args.wrk_cpu, args.proxy_cpu}
    pin = not args.no_pin and wanted <= os.sched_getaffinity(0) and len(wanted) == 2
    return (args.wrk_cpu, args.proxy_cpu) if pin else (None, None)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # unwinds through the finally blocks that stop every process


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_tools()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    if args.nice:
        set_group_nice(os.getpid(), args.nice)  # wrk runs in this session
    wrk_cpu, proxy_cpu = pinned_cpus(args)
    pin = proxy_cpu is not None
    pinning = (
        f"wrk and backend on CPU{wrk_cpu}, proxy alone on CPU{proxy_cpu} (taskset)"
        if pin
        else "none"
    )
    load_before = loadavg()
    procs = Procs(args.nice)
    with bench_run(procs, "tcpvs-bench-", args.keep, "configs and logs") as work:
        results, missing, counts = run(args, Bench(procs, work, proxy_cpu), wrk_cpu)
    settings = (
        (f"nice {args.nice}; " if args.nice else "")
        + f"wrk -t1 -c{args.conns}, {args.seconds:g} s per cell, {args.rounds} rounds "
        f"(systems interleaved, order rotated each round), {args.warmup:g} s warm-up; "
        "GET /a/SIZE and /b/SIZE alternating"
    )
    info = machine_info(pinning, settings, load_before, args.note)
    systems = [
        (s.name, s.what) for s in SYSTEMS if s.name in args.systems and s.name not in missing
    ]
    desc = (
        f"strace -c -f, up to {args.syscall_requests} sequential requests on one keep-alive "
        "connection, no load otherwise"
    )
    report = render(info, systems, results, missing, counts, desc)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(report + "\n")
    raw = {
        "info": dict(info),
        "missing": missing,
        "cells": {
            size: {n: [asdict(c) for c in cs] for n, cs in row.items()}
            for size, row in results.items()
        },
        "syscalls": {size: {n: asdict(c) for n, c in row.items()} for size, row in counts.items()},
    }
    (RESULTS / "latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    if args.publish:
        publish(DOC, report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; every process it started was stopped")
