"""The bench's markdown report: machine and versions, one table per body size (medians with
min–max), ratios to HAProxy and to direct, issue 4's targets for tcpvs, system calls per request."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from bench.measure import Cell
from bench.systems import BASELINE, DIRECT, REPO, SIZES, tcpvs_commands
from tests.support.syscalls import SyscallCount

Results = dict[str, dict[str, list[Cell]]]  # size label -> system -> one cell per round
Syscalls = dict[str, dict[str, SyscallCount]]  # size label -> system -> count
METRICS: list[tuple[str, str]] = [  # (column, Cell attribute)
    ("req/s", "rps"),
    ("MB/s", "mbps"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("proxy CPU µs/req", "cpu_us"),
    ("of which kernel", "sys_us"),
    ("proxy CPU %", "cpu_pct"),
]
LABELS = {attr: column for column, attr in METRICS}
BEST_HAPROXY = "best HAProxy"  # the HAProxy variant with the higher median req/s at that size
TARGETS: list[tuple[str, str, str, str, float]] = [  # issue 4: (size, metric, versus, op, factor)
    ("13 B", "cpu_us", BASELINE, "<=", 0.9),
    ("13 B", "rps", BASELINE, ">=", 1.0),
    ("64 KiB", "rps", BASELINE, ">=", 1.2),
    ("64 KiB", "cpu_us", BASELINE, "<=", 0.7),
    ("1 MiB", "rps", BEST_HAPROXY, ">=", 1.0),
    ("1 MiB", "cpu_us", BEST_HAPROXY, "<=", 1.0),
    *[(size, "p99_ms", BASELINE, "<=", 1.1) for size in SIZES],
]


def num(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def values(cells: list[Cell], attr: str) -> list[float]:
    return [v for c in cells if (v := getattr(c, attr)) is not None]


def median(cells: list[Cell], attr: str) -> float | None:
    vals = values(cells, attr)
    return statistics.median(vals) if vals else None


def spread(cells: list[Cell], attr: str) -> str:
    return spread_of(values(cells, attr))


def spread_of(vals: list[float]) -> str:
    """The median, and the range when there are several values."""
    if not vals:
        return "–"
    mid = num(statistics.median(vals))
    return mid if len(vals) == 1 else f"{mid} ({num(min(vals))}–{num(max(vals))})"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def best_haproxy(row: dict[str, list[Cell]]) -> str | None:
    variants = [s for s in row if s.startswith("haproxy") and row[s]]
    return max(variants, key=lambda s: median(row[s], "rps") or 0, default=None)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def size_tables(size: str, row: dict[str, list[Cell]], missing: dict[str, str]) -> list[str]:
    row = {name: cells for name, cells in row.items() if cells}
    ncpu = max((len(c.busy) for cells in row.values() for c in cells), default=0)
    busy_col = "busy % " + "/".join(f"CPU{i}" for i in range(ncpu))
    out = [f"### {size}", ""]
    rows = []
    for name, cells in row.items():
        errs = sum(c.errors for c in cells)
        label = name + (f" ⚠ {errs} errors" if errs else "")
        busy = "/".join(f"{statistics.median(c.busy[i] for c in cells):.0f}" for i in range(ncpu))
        rows.append([label, *(spread(cells, a) for _, a in METRICS), busy])
    rows += [[name, "not available", *[""] * len(METRICS)] for name in missing if name not in row]
    out += _table(["system", *(m for m, _ in METRICS), busy_col], rows)
    base, direct = row.get(BASELINE), row.get(DIRECT)
    out += ["", f"Ratios of medians, `×{BASELINE} / ×{DIRECT}`:", ""]
    rows = [
        [
            name,
            *(
                f"{ratio(median(cells, a), median(base, a) if base else None)} / "
                f"{ratio(median(cells, a), median(direct, a) if direct else None)}"
                for _, a in METRICS[:5]
            ),
        ]
        for name, cells in row.items()
        if name != DIRECT
    ]
    return out + _table(["system", *(m for m, _ in METRICS[:5])], rows) + [""]


def targets_table(results: Results, system: str = "tcpvs") -> list[str]:
    rows = []
    for size, attr, versus, op, factor in TARGETS:
        row = results.get(size, {})
        ref = best_haproxy(row) if versus == BEST_HAPROXY else versus
        if system not in row or ref not in row:
            continue
        mine, theirs = median(row[system], attr), median(row[ref], attr)
        if mine is None or not theirs:
            continue
        r = mine / theirs
        ok = r <= factor if op == "<=" else r >= factor
        rows.append(
            [
                size,
                LABELS[attr],
                f"{op} {factor}× {ref}",
                f"{r:.3f}×",
                "met" if ok else "**missed**",
            ]
        )
    if not rows:
        return []
    head = [f"### Issue 4 targets for {system} (this run's medians)", ""]
    return head + _table(["size", "metric", "target", "measured", ""], rows) + [""]


def syscalls_table(counts: Syscalls, n_desc: str) -> list[str]:
    if not counts:
        return []
    systems = list(dict.fromkeys(s for per in counts.values() for s in per))
    out = [f"### System calls per request ({n_desc})", ""]
    rows = [
        [
            size,
            *(f"{counts[size][s].per_request:.2f}" if s in counts[size] else "–" for s in systems),
        ]
        for size in counts
    ]
    out += _table(["size", *systems], rows) + ["", "Most frequent calls per request:", ""]
    for size, per in counts.items():
        for s, c in per.items():
            top = ", ".join(f"{name} {v:.2f}" for name, v in c.top())
            out.append(f"- {size}, {s}: {top}")
    return out + [""]


def _first_line(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_info(pinning: str, settings: str, load_before: str, note: str) -> list[tuple[str, str]]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    tcpvsd = tcpvs_commands()[0]
    version = re.search(r'__version__ = "(.*)"', (REPO / "tcpvs" / "_version.py").read_text())
    try:
        uvloop = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop = "not installed"
    info = [
        ("date", time.strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", f"{model.group(1) if model else '?'}, {os.cpu_count()} cores"),
        ("kernel", platform.release()),
        ("haproxy", _first_line(["haproxy", "-v"])),
        ("nginx", _first_line(["nginx", "-v"])),
        ("wrk", _first_line(["wrk", "-v"])),
        ("python / uvloop", f"{platform.python_version()} / {uvloop}"),
        (
            "tcpvs",
            f"{version.group(1) if version else '?'}, run as "
            + (f"`{tcpvsd[0]}`" if len(tcpvsd) == 1 else "this tree's `tcpvs.daemon.tcpvsd:main`")
            + f" ({_first_line([*tcpvsd, '--version'])})",
        ),
        ("pinning", pinning),
        ("settings", settings),
        ("load average before / after", f"{load_before} / {loadavg()}"),
    ]
    return info + ([("note", note)] if note else [])


def render(
    info: list[tuple[str, str]],
    systems: list[tuple[str, str]],
    results: Results,
    missing: dict[str, str],
    counts: Syscalls,
    syscall_desc: str,
) -> str:
    out = ["## Latest results", ""]
    out += [f"- **{k}**: {v}" for k, v in info]
    out += ["", "Systems:", ""]
    out += [f"- `{name}`: {what}" for name, what in systems]
    out += [f"- `{name}`: **not available**: {why}" for name, why in missing.items()]
    out.append("")
    for size, row in results.items():
        out += size_tables(size, row, missing)
    out += targets_table(results) + syscalls_table(counts, syscall_desc)
    return "\n".join(out)


BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def publish(doc: Path, report: str, begin: str = BEGIN, end_marker: str = END) -> None:
    """Replace the generated part of docs/benchmarks.md (between the markers) with report."""
    text = doc.read_text()
    start, end = text.index(begin) + len(begin), text.index(end_marker)
    doc.write_text(text[:start] + "\n" + report.strip() + "\n" + text[end:])
