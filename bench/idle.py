"""Memory of idle keep-alive client connections: tcpvsd's resident memory growth once N clients
have each made one request and stay connected (issue target: 10,000 -> at most 40 MiB), and with
--trace where that memory goes (tracemalloc in a Switch run in a child process).

    .venv/bin/python -m bench.idle                  # nginx backend + tcpvsd, 10,000 connections
    .venv/bin/python -m bench.idle --trace          # the tracemalloc breakdown per connection
    .venv/bin/python -m bench.idle --pid PID --port PORT   # an already running tcpvsd
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import Procs, free_port, process_tree, stop
from bench.systems import (
    REPO,
    TCPVS_CONF,
    Bench,
    start_backend,
    start_tcpvs,
    tcpvs_commands,
)
from tests.support.idle import (
    COUNT,
    SETTLE,
    TIMEOUT,
    WINDOW,
    IdleClients,
    measure_idle,
    memory,
    nofile_needed,
    raise_nofile,
    warm_up,
)

# maxclients must admit every connection (the default follows tcpvsd's open-files limit and
# may be lower); keepalive_timeout (default 30 s) must not close the first connections while
# the last ones are still being opened and measured.
IDLE_SETTINGS = {"maxclients": 65535, "keepalive_timeout": 600}


def idle_config(port: int, b1: int, b2: int) -> str:
    """The bench's tcpvs service (scheduler http, two rules, X-Forwarded-For on) plus
    IDLE_SETTINGS: the production setup, admitting many idle connections."""
    block = TCPVS_CONF.format(port=port, b1=b1, b2=b2).rstrip()
    assert block.endswith("}"), block
    settings = "".join(f"    {key} = {value}\n" for key, value in IDLE_SETTINGS.items())
    return f"{block[:-1]}{settings}}}\n"


def _owned(obj: Any, shared: set[int], seen: set[int]) -> int:
    """Bytes of obj and what it alone references (not in `shared`), following plain data and
    tcpvs objects; never modules, classes, functions or transports."""
    if id(obj) in seen or id(obj) in shared or obj is None or isinstance(obj, bool):
        return 0
    if isinstance(obj, int) and -5 <= obj <= 256:  # cached small ints are shared
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if type(obj).__module__.startswith(("tcpvs", "builtins", "_regex", "regex")):
        for ref in gc.get_referents(obj):
            if not isinstance(ref, type) and not callable(ref):
                size += _owned(ref, shared, seen)
    return size


def _fields(obj: Any) -> list[str]:
    """Attribute names of obj: its __dict__, __slots__, or C fields of an extension type."""
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name, attr in vars(cls).items():
            if type(attr).__name__ in ("member_descriptor", "getset_descriptor"):
                if not name.startswith("__") and name not in names:
                    names.append(name)
    return names


def anatomy(others: int = 8) -> list[tuple[str, int]]:
    """Bytes one idle client connection holds, field by field. What it shares with `others`
    other connections (listener, servers, rules, singletons) is not counted."""
    frontends = [o for o in gc.get_objects() if type(o).__name__ == "HttpFrontend"]
    if len(frontends) <= others:
        return []
    one, *rest = frontends[len(frontends) // 2 :][: others + 1]
    names = [n for n in _fields(one) if all(getattr(one, n) is not getattr(o, n) for o in rest)]
    shared: set[int] = set()
    for other in rest:
        for name in names:
            if name != "transport":
                _owned(getattr(other, name), set(), shared)
    rows = [(f"{type(one).__name__} object", sys.getsizeof(one))]
    if hasattr(one, "__dict__"):
        rows.append(("its __dict__ (once materialized)", sys.getsizeof(vars(one))))
    for name in names:
        value = getattr(one, name)
        if name == "transport":
            rows.append(
                (f".transport ({type(value).__name__}, Python object)", sys.getsizeof(value))
            )
        elif size := _owned(value, shared, set()):
            rows.append((f".{name} ({type(value).__name__})", size))
    return rows


def _where(frames: Sequence[tracemalloc.Frame]) -> str:
    """The allocating line, and the innermost tcpvs line that led to it (if another one)."""

    def short(frame: tracemalloc.Frame) -> str:
        name = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", frame.filename)
        return f"{name.removeprefix(str(REPO) + '/')}:{frame.lineno}"

    inner = frames[-1]  # tracemalloc orders frames oldest first
    via = next((f for f in reversed(frames) if "/tcpvs/" in f.filename), None)
    if via is None:  # e.g. uvloop's C code, seen at the line that runs the loop
        return f"{short(inner)} (no tcpvs frame)"
    return short(inner) + (f" (via {short(via)})" if via != inner else "")


async def _serve_traced(config: str, frames: int) -> None:
    """The traced child: a Switch running `config`; commands on stdin, one JSON line each on
    stdout: `mark` takes the baseline snapshot, `report` compares with it; EOF ends it."""
    import tcpvs.http  # here (the parent needs neither tcpvs nor uvloop); as in production

    # Compiled engine code has no Python frames for tracemalloc to name: trace the engine's
    # Python source (same fields, in a __dict__ instead of C fields) unless
    # TCPVS_PURE_PYTHON=0 asks for the compiled one. The head parser is already chosen.
    os.environ.setdefault("TCPVS_PURE_PYTHON", "1")

    tracemalloc.start(frames)
    switch = tcpvs.Switch()
    await switch.load_config(config, "idle.conf")
    await switch.start()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    baseline = None
    print("ready", flush=True)
    while command := (await stdin.readline()).strip():
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if command == b"mark" or baseline is None:
            baseline = snapshot
            print("{}", flush=True)
            continue
        sites: dict[str, list[int]] = {}  # where -> [bytes, blocks]: tracebacks merged by line
        for diff in snapshot.compare_to(baseline, "traceback"):
            site = sites.setdefault(_where(diff.traceback), [0, 0])
            site[0] += diff.size_diff
            site[1] += diff.count_diff
        top = sorted(sites.items(), key=lambda item: -item[1][0])
        engine = sys.modules["tcpvs.compiled"].IMPLEMENTATION
        print(json.dumps({"engine": engine, "top": top, "anatomy": anatomy()}), flush=True)
    await switch.close()


def serve_traced(config: str, frames: int) -> None:
    import uvloop

    uvloop.run(_serve_traced(config, frames))


def breakdown(bench: Bench, count: int, frames: int, window: int) -> dict[str, Any]:
    """tracemalloc's comparison before/after `count` idle connections to a traced Switch."""
    start_backend(bench, cpu=None)
    port = free_port()
    code = "import sys, bench.idle as m; m.serve_traced(sys.argv[1], int(sys.argv[2]))"
    argv = [sys.executable, "-c", code, idle_config(port, bench.b1, bench.b2), str(frames)]
    raise_nofile(nofile_needed(count))  # before the child starts: it inherits the limit
    child = subprocess.Popen(
        argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    def answer() -> str:
        # Snapshots of 10,000 traced connections take seconds, not this long.
        if not select.select([stdout], [], [], TIMEOUT * 5)[0]:
            raise RuntimeError("the traced switch did not answer in time")
        return stdout.readline().strip()

    def ask(command: str) -> dict[str, Any]:
        stdin.write(command + "\n")
        stdin.flush()
        return json.loads(answer() or "null")

    try:
        if answer() != "ready":
            raise RuntimeError(f"the traced switch did not start (exit {child.poll()})")
        warm_up(port, window)
        ask("mark")
        with IdleClients(port) as clients:
            clients.open(count, window=window, timeout=TIMEOUT * 10)  # tracing is slow
            time.sleep(SETTLE)
            return ask("report")
    finally:
        stop(child)  # type: ignore[arg-type]


def print_breakdown(report: dict[str, Any], count: int, top: int) -> None:
    traced = sum(size for _, (size, _) in report["top"])
    print(
        f"tracemalloc, {report['engine']} engine: {traced / count:.0f} B per idle connection "
        f"({traced / 2**20:.1f} MiB)"
    )
    print(f"\n{'B/conn':>7} {'blocks/conn':>11}  allocated at (via the tcpvs line)")
    for where, (size, blocks) in report["top"][:top]:
        if size >= count:  # at least 1 B per connection
            print(f"{size / count:7.0f} {blocks / count:11.2f}  {where}")
    print(
        "(at the line that runs the loop, asyncio/runners.py: uvloop's C code, i.e. the "
        "TCPTransport, its libuv handle, its context, the bytes read)"
    )
    print("\nOne idle HttpFrontend, bytes it alone holds (Python objects only):")
    for what, size in report["anatomy"]:
        print(f"{size:7d}  {what}")
    print(f"{sum(size for _, size in report['anatomy']):7d}  total")


# -- the command ---------------------------------------------------------------------------------


def start_idle_tcpvs(bench: Bench, count: int) -> tuple[int, int]:
    """(tcpvsd PID, port): started and configured as the bench does (start_tcpvs), then
    reloaded with `tcpvsadm -f` to admit `count` idle connections."""
    start_backend(bench, cpu=None)
    running = start_tcpvs(bench)
    assert running.proc is not None
    conf = bench.work / "idle.conf"
    conf.write_text(idle_config(running.port, bench.b1, bench.b2))
    _, tcpvsadm, env = tcpvs_commands()
    argv = [*tcpvsadm, "--socket", str(bench.work / "tcpvsd.sock"), "-f", str(conf)]
    done = subprocess.run(argv, capture_output=True, env=env, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"tcpvsadm -f: {(done.stdout + done.stderr).decode().strip()}")
    return running.proc.pid, running.port


def engine() -> str:
    """Which engine tcpvsd runs, as `tcpvsd -V` says."""
    tcpvsd, _, env = tcpvs_commands()
    done = subprocess.run([*tcpvsd, "-V"], capture_output=True, text=True, env=env, timeout=30)
    found = done.stdout.strip().partition("(")[2].rstrip(")")
    return found or "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--count", type=int, default=COUNT, help=f"connections ({COUNT})")
    ap.add_argument("--window", type=int, default=WINDOW, help=f"opened at once ({WINDOW})")
    ap.add_argument("--pid", type=int, help="measure this running tcpvsd (with --port)")
    ap.add_argument("--port", type=int, help="its HTTP service's port (maxclients >= count)")
    ap.add_argument("--trace", action="store_true", help="the tracemalloc breakdown instead")
    ap.add_argument("--frames", type=int, default=8, help="--trace: frames per trace (8)")
    ap.add_argument("--top", type=int, default=15, help="--trace: allocation sites shown (15)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    args = ap.parse_args(argv)
    if (args.pid is None) != (args.port is None):
        ap.error("--pid and --port go together")
    work = Path(tempfile.mkdtemp(prefix="tcpvs-idle-"))
    work.chmod(0o755)  # nginx workers may run as another user and read www/ below
    bench = Bench(Procs(), work, proxy_cpu=None)
    try:
        if args.trace:
            print_breakdown(
                breakdown(bench, args.count, args.frames, args.window), args.count, args.top
            )
            return 0
        if args.pid is not None:
            pid, port = args.pid, args.port
        else:
            pid, port = start_idle_tcpvs(bench, args.count)
        for p in process_tree(pid):  # in case tcpvsd keeps a low soft limit: as prlimit(1) would
            raise_nofile(nofile_needed(args.count), p)
        print(f"tcpvsd PID {pid}, engine {engine()}, {len(process_tree(pid))} process(es)")
        warm_up(port, args.window)
        with IdleClients(port) as clients:
            result = measure_idle(pid, clients, args.count, window=args.window)
            print(result.summary())
            open_now = clients.still_open()
        print(f"still open at the end: {open_now}/{args.count}")
        time.sleep(SETTLE)
        print(f"tcpvsd RSS once they closed: {memory(pid).rss_kib / 1024:.1f} MiB")
        return 0 if open_now == args.count else 1
    except RuntimeError as exc:
        print(f"bench.idle: {exc}\nconfigs and logs kept in {work}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        bench.procs.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
