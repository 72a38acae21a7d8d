"""One cell: a wrk run pinned to a CPU against one system, with the proxy's CPU time from /proc
read just before and after; exact totals come from a wrk Lua done() hook (no rounding)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import cpu_busy, cpu_seconds

# Pre-formatted requests cycle over the paths given after "--"; done() prints exact totals.
WRK_LUA = """\
local reqs, i = {}, 0
function init(args)
  for k, path in ipairs(args) do reqs[k] = wrk.format("GET", path) end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(s, latency, _)
  local e = s.errors
  io.write(string.format(
    'BENCH {"requests": %d, "bytes": %d, "us": %d, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"errors": %d, "status": %d}\\n',
    s.requests, s.bytes, s.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Cell:
    rps: float
    mbps: float  # MB = 10^6 bytes, headers included
    p50_ms: float
    p99_ms: float
    cpu_us: float | None  # proxy CPU per request; None without a proxy
    sys_us: float | None  # the part of cpu_us spent in the kernel (system calls, TCP)
    cpu_pct: float | None  # proxy CPU / wall time
    busy: list[float]  # % busy per CPU (whole machine: shows the bottleneck and other load)
    requests: int
    errors: int  # socket errors + non-2xx/3xx answers


def wrk_script(work: Path) -> Path:
    script = work / "bench.lua"
    script.write_text(WRK_LUA)
    return script


def measure(
    port: int,
    paths: list[str],
    proxy_pid: int | None,
    *,
    seconds: int,
    conns: int,
    cpu: int | None,
    script: Path,
    scheme: str = "http",
    host: str = "127.0.0.1",
) -> Cell:
    """`host`: the URL's host (wrk's Host header and TLS server name); a name needs a script
    that connects to 127.0.0.1 anyway (bench/tls.py's passthrough script)."""
    argv = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"{scheme}://{host}:{port}",
        "--",
        *paths,
    ]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    busy0, (user0, sys0) = cpu_busy(), cpu_seconds(proxy_pid) if proxy_pid else (0.0, 0.0)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    busy1, (user1, sys1) = cpu_busy(), cpu_seconds(proxy_pid) if proxy_pid else (0.0, 0.0)
    cpu0, cpu1 = user0 + sys0, user1 + sys1
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited {out.returncode}: {out.stderr.strip() or out.stdout}")
    r = json.loads(line[len("BENCH ") :])
    wall = r["us"] / 1e6
    n = max(r["requests"], 1)
    return Cell(
        rps=r["requests"] / wall,
        mbps=r["bytes"] / wall / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        cpu_us=(cpu1 - cpu0) / n * 1e6 if proxy_pid else None,
        sys_us=(sys1 - sys0) / n * 1e6 if proxy_pid else None,
        cpu_pct=(cpu1 - cpu0) / wall * 100 if proxy_pid else None,
        busy=[
            100 * (b1 - b0) / max(t1 - t0, 1)
            for (b0, t0), (b1, t1) in zip(busy0, busy1, strict=True)
        ],
        requests=r["requests"],
        errors=r["errors"] + r["status"],
    )
